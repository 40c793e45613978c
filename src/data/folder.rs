//! Image-folder datasets: one subfolder per class (labelled) or images directly inside the folder
//! (unlabeled). Decoded in parallel, converted to RGB, resized to one working size, and cached
//! outside the user's folder so that the second run starts at once.

use super::{channel_stats, Dataset, LoadOptions, Split};
use anyhow::{bail, Context};
use md5::{Digest, Md5};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Working side (px) for folders whose images differ in size or are larger than 256 px.
pub const DEFAULT_FOLDER_SIZE: usize = 96;
const NATIVE_MAX: usize = 256;
const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];
const CACHE_MAGIC: &[u8; 8] = b"SIMCLRF1";
/// How many names of undecodable files a message lists.
const NAMES_SHOWN: usize = 5;

/// What loading a folder did, for messages and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FolderReport {
    /// Images in the dataset.
    pub loaded: usize,
    /// Image files that did not decode (skipped).
    pub skipped: usize,
    /// The first few of them (paths relative to the folder).
    pub skipped_names: Vec<String>,
    /// Files without an image extension (.png, .jpg, .jpeg), ignored.
    pub ignored: usize,
    /// Images whose size differed from the working size.
    pub resized: usize,
    /// Images that were not 8-bit RGB (grayscale, RGBA, 16-bit), converted.
    pub converted: usize,
    pub from_cache: bool,
    pub cache_file: Option<PathBuf>,
}

impl FolderReport {
    pub fn skipped_message(&self) -> String {
        let more = if self.skipped > self.skipped_names.len() {
            ", ..."
        } else {
            ""
        };
        format!(
            "skipped {} file(s) that did not decode: {}{more} (use --strict to stop on them instead)",
            self.skipped,
            self.skipped_names.join(", ")
        )
    }
}

/// Where decoded folders are cached: `$SIMCLR_CACHE`, else `$XDG_CACHE_HOME/simclr-wgpu`,
/// else `~/.cache/simclr-wgpu`, else `./data/.cache`.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = env("SIMCLR_CACHE") {
        return d;
    }
    if let Some(d) = env("XDG_CACHE_HOME") {
        return d.join("simclr-wgpu");
    }
    if let Some(h) = env("HOME") {
        return h.join(".cache").join("simclr-wgpu");
    }
    PathBuf::from("data").join(".cache")
}

struct Listing {
    root: PathBuf,
    files: Vec<(PathBuf, Option<u32>)>,
    classes: Vec<String>,
    ignored: usize,
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !is_hidden(p))
        .collect();
    v.sort();
    Ok(v)
}

/// Image files under `dir` (recursively), sorted; counts other files in `ignored`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, ignored: &mut usize) -> anyhow::Result<()> {
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            walk(&p, out, ignored)?;
        } else if is_image(&p) {
            out.push(p);
        } else {
            *ignored += 1;
        }
    }
    Ok(())
}

fn list(dir: &Path, split: Split) -> anyhow::Result<Listing> {
    // A folder with train/ or test/ inside is split by those; otherwise it is one split.
    let has_splits = ["train", "test"].iter().any(|s| dir.join(s).is_dir());
    let root = if has_splits {
        let r = dir.join(split.name());
        if !r.is_dir() {
            bail!("{} has train/test subfolders but no {}/", dir.display(), split.name());
        }
        r
    } else if split == Split::Test {
        bail!("{} has no test/ subfolder to take a test split from", dir.display());
    } else {
        dir.to_path_buf()
    };
    let entries = sorted_entries(&root)?;
    let subdirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let mut files = Vec::new();
    let mut ignored = 0;
    let mut classes = Vec::new();
    if subdirs.is_empty() {
        for p in &entries {
            if is_image(p) {
                files.push((p.clone(), None));
            } else {
                ignored += 1;
            }
        }
    } else {
        // Loose files next to class folders belong to no class.
        ignored += entries.len() - subdirs.len();
        for (c, d) in subdirs.iter().enumerate() {
            let mut found = Vec::new();
            walk(d, &mut found, &mut ignored)?;
            files.extend(found.into_iter().map(|p| (p, Some(c as u32))));
            classes.push(d.file_name().unwrap_or_default().to_string_lossy().into_owned());
        }
    }
    if files.is_empty() {
        bail!(
            "no images ({}) found in {}{}",
            EXTENSIONS.join(", "),
            root.display(),
            if ignored > 0 {
                format!(" ({ignored} other files ignored)")
            } else {
                String::new()
            }
        );
    }
    Ok(Listing {
        root,
        files,
        classes,
        ignored,
    })
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Cache key: the folder, the working size and every file's name, size and modification time.
fn cache_key(l: &Listing, size: Option<usize>) -> anyhow::Result<String> {
    let mut h = Md5::new();
    let root = l.root.canonicalize().unwrap_or_else(|_| l.root.clone());
    h.update(format!("v1\n{}\n{size:?}\n", root.display()).as_bytes());
    for (p, label) in &l.files {
        let m = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(format!("{}\t{label:?}\t{}\t{mtime}\n", rel(&l.root, p), m.len()).as_bytes());
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Scale so the image covers h×w (shorter side fits), then crop the centre.
fn fit(img: image::RgbImage, h: usize, w: usize) -> image::RgbImage {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    if (ih, iw) == (h, w) {
        return img;
    }
    let s = (h as f64 / ih as f64).max(w as f64 / iw as f64);
    let nw = ((iw as f64 * s).round() as u32).max(w as u32);
    let nh = ((ih as f64 * s).round() as u32).max(h as u32);
    let scaled = image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((nw - w as u32) / 2, (nh - h as u32) / 2);
    image::imageops::crop_imm(&scaled, x0, y0, w as u32, h as u32).to_image()
}

/// Decode one image file and bring it to size×size the way folder datasets are (shorter side
/// scaled, centre crop); HWC RGB bytes. Errors name the file.
pub fn load_image_file(path: &Path, size: usize) -> anyhow::Result<Vec<u8>> {
    let img = image::open(path)
        .map_err(|e| anyhow::anyhow!("{} is not a readable image: {e}", path.display()))?
        .to_rgb8();
    Ok(fit(img, size, size).into_raw())
}

/// Load a folder dataset (see the module docs), using and refreshing the cache.
pub fn load(dir: &Path, split: Split, opts: &LoadOptions) -> anyhow::Result<(Dataset, FolderReport)> {
    let listing = list(dir, split)?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let name = format!("{}-{}", if name.is_empty() { "folder" } else { &name }, split.name());
    let cache_file = if opts.no_cache {
        None
    } else {
        let key = cache_key(&listing, opts.image_size)?;
        Some(
            opts.cache_dir
                .clone()
                .unwrap_or_else(cache_dir)
                .join(format!("folder-{key}.bin")),
        )
    };
    if let Some(cf) = &cache_file {
        // With --strict a cache that skipped files is not used: decoding again names the culprit.
        if let Some((mut ds, mut report)) = read_cache(cf).filter(|(_, r)| !(opts.strict && r.skipped > 0)) {
            ds.name = name;
            report.from_cache = true;
            report.cache_file = Some(cf.clone());
            return Ok((ds, report));
        }
    }
    let (ds, mut report) = decode(&listing, name, opts)?;
    if let Some(cf) = &cache_file {
        match write_cache(cf, &ds, &report) {
            Ok(()) => report.cache_file = Some(cf.clone()),
            Err(e) => eprintln!("warning: could not write the dataset cache {}: {e:#}", cf.display()),
        }
    }
    Ok((ds, report))
}

fn decode(l: &Listing, name: String, opts: &LoadOptions) -> anyhow::Result<(Dataset, FolderReport)> {
    // Headers first (cheap), to choose the working size and to find undecodable files early.
    let dims: Vec<Result<(u32, u32), String>> = l
        .files
        .par_iter()
        .map(|(p, _)| image::image_dimensions(p).map_err(|e| e.to_string()))
        .collect();
    let (h, w) = match opts.image_size {
        Some(s) => (s, s),
        None => {
            let mut ok = dims.iter().filter_map(|d| d.as_ref().ok());
            let first = ok.next().copied();
            match first {
                Some((fw, fh))
                    if ok.all(|&d| d == (fw, fh)) && (fw.max(fh) as usize) <= NATIVE_MAX && fw > 0 && fh > 0 =>
                {
                    (fh as usize, fw as usize)
                }
                _ => (DEFAULT_FOLDER_SIZE, DEFAULT_FOLDER_SIZE),
            }
        }
    };
    if h == 0 || w == 0 {
        bail!("the image size must be at least 1 px");
    }
    let decoded: Vec<Result<(image::RgbImage, bool, bool), String>> = l
        .files
        .par_iter()
        .zip(&dims)
        .map(|((p, _), d)| {
            d.as_ref().map_err(|e| e.clone())?;
            let img = image::open(p).map_err(|e| e.to_string())?;
            let converted = img.color() != image::ColorType::Rgb8;
            let rgb = img.to_rgb8();
            let resized = (rgb.height() as usize, rgb.width() as usize) != (h, w);
            Ok((fit(rgb, h, w), resized, converted))
        })
        .collect();
    let mut report = FolderReport {
        ignored: l.ignored,
        ..Default::default()
    };
    let mut images = Vec::with_capacity(l.files.len() * h * w * 3);
    let mut labels = Vec::new();
    for ((path, label), r) in l.files.iter().zip(decoded) {
        match r {
            Ok((img, resized, converted)) => {
                images.extend_from_slice(img.as_raw());
                labels.extend(*label);
                report.loaded += 1;
                report.resized += resized as usize;
                report.converted += converted as usize;
            }
            Err(e) => {
                if opts.strict {
                    bail!("{} does not decode as an image: {e}", path.display());
                }
                report.skipped += 1;
                if report.skipped_names.len() < NAMES_SHOWN {
                    report.skipped_names.push(rel(&l.root, path));
                }
            }
        }
    }
    if report.loaded == 0 {
        bail!(
            "none of the {} image files in {} decoded ({})",
            l.files.len(),
            l.root.display(),
            report.skipped_names.join(", ")
        );
    }
    let (mean, std) = channel_stats(&images);
    let labelled = !l.classes.is_empty();
    Ok((
        Dataset {
            name,
            images,
            labels: labelled.then_some(labels),
            classes: l.classes.clone(),
            height: h,
            width: w,
            mean,
            std,
        },
        report,
    ))
}

fn put_u64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put_str(v: &mut Vec<u8>, s: &str) {
    put_u64(v, s.len() as u64);
    v.extend_from_slice(s.as_bytes());
}

fn write_cache(path: &Path, ds: &Dataset, r: &FolderReport) -> anyhow::Result<()> {
    let mut v = Vec::with_capacity(ds.images.len() + 4096);
    v.extend_from_slice(CACHE_MAGIC);
    for x in [
        ds.len(),
        ds.height,
        ds.width,
        ds.labels.is_some() as usize,
        ds.classes.len(),
    ] {
        put_u64(&mut v, x as u64);
    }
    for c in &ds.classes {
        put_str(&mut v, c);
    }
    for l in ds.labels.iter().flatten() {
        v.extend_from_slice(&l.to_le_bytes());
    }
    for x in ds.mean.iter().chain(&ds.std) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    for x in [r.skipped, r.ignored, r.resized, r.converted, r.skipped_names.len()] {
        put_u64(&mut v, x as u64);
    }
    for n in &r.skipped_names {
        put_str(&mut v, n);
    }
    v.extend_from_slice(&ds.images);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    // Write then rename, so that an interrupted run never leaves a half cache behind.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &v)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<usize> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?) as usize)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn f32(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u64()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// The cached dataset, or None when absent or unreadable (then it is rebuilt).
fn read_cache(path: &Path) -> Option<(Dataset, FolderReport)> {
    let bytes = std::fs::read(path).ok()?;
    let mut r = Reader(&bytes);
    if r.take(8)? != CACHE_MAGIC {
        return None;
    }
    let (n, h, w, labelled, nc) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let classes = (0..nc).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
    let labels = if labelled == 1 {
        Some((0..n).map(|_| r.u32()).collect::<Option<Vec<_>>>()?)
    } else {
        None
    };
    let mut stats = [0f32; 6];
    for s in &mut stats {
        *s = r.f32()?;
    }
    let (skipped, ignored, resized, converted, nn) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let skipped_names = (0..nn).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
    let images = r.take(n.checked_mul(h * w * 3)?)?.to_vec();
    if !r.0.is_empty() {
        return None;
    }
    let ds = Dataset {
        name: String::new(),
        images,
        labels,
        classes,
        height: h,
        width: w,
        mean: [stats[0], stats[1], stats[2]],
        std: [stats[3], stats[4], stats[5]],
    };
    let report = FolderReport {
        loaded: n,
        skipped,
        skipped_names,
        ignored,
        resized,
        converted,
        from_cache: true,
        cache_file: None,
    };
    Some((ds, report))
}
