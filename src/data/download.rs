//! `simclr data download`: fetch an official archive over HTTPS with a progress bar, check its
//! published MD5, and unpack it next to where it was saved.

use super::DatasetKind;
use anyhow::{bail, Context};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One downloadable archive: where it lives, its published checksum and what it unpacks to.
#[derive(Clone, Debug)]
pub struct ArchiveSpec {
    pub url: String,
    /// Lower-case hex MD5 of the archive.
    pub md5: String,
    /// File name the archive is saved under.
    pub file: String,
    /// Folder (inside the archive) that holds the dataset.
    pub folder: String,
}

/// The official archive of a built-in dataset, from the publisher's site or from
/// `base_url/<file>` when a mirror is given.
pub fn spec(kind: DatasetKind, base_url: Option<&str>) -> anyhow::Result<ArchiveSpec> {
    let (base, file, md5, folder) = match kind {
        DatasetKind::Cifar10 => (
            "https://www.cs.toronto.edu/~kriz",
            "cifar-10-binary.tar.gz",
            "c32a1d4ab5d03f1284b67883e8d87530",
            "cifar-10-batches-bin",
        ),
        DatasetKind::Cifar100 => (
            "https://www.cs.toronto.edu/~kriz",
            "cifar-100-binary.tar.gz",
            "03b5dce01913d631647c71ecec9e9cb8",
            "cifar-100-binary",
        ),
        DatasetKind::Stl10 => (
            "https://cs.stanford.edu/~acoates/stl10",
            "stl10_binary.tar.gz",
            "91f7769df0f17e558f3565bffb0c7dfb",
            "stl10_binary",
        ),
        DatasetKind::Folder => bail!("an image folder cannot be downloaded; point --data at it"),
    };
    let base = base_url.unwrap_or(base).trim_end_matches('/');
    Ok(ArchiveSpec {
        url: format!("{base}/{file}"),
        md5: md5.into(),
        file: file.into(),
        folder: folder.into(),
    })
}

/// Download and unpack a built-in dataset into `to`; returns the dataset's folder
/// (e.g. `to/cifar-10-batches-bin`). Does nothing when that folder is already there.
pub fn download(kind: DatasetKind, to: &Path, base_url_override: Option<&str>) -> anyhow::Result<PathBuf> {
    download_archive(&spec(kind, base_url_override)?, to)
}

/// `download` for any archive spec (tests serve their own archive with their own checksum).
pub fn download_archive(spec: &ArchiveSpec, to: &Path) -> anyhow::Result<PathBuf> {
    let target = to.join(&spec.folder);
    if target.is_dir() {
        eprintln!("{} is already there; nothing to download", target.display());
        return Ok(target);
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let archive = to.join(&spec.file);
    // An archive the user put there already is used as it is (and never deleted).
    let fetched = if archive.is_file() && md5_file(&archive)? == spec.md5 {
        eprintln!("using {} (checksum matches)", archive.display());
        false
    } else {
        fetch(spec, &archive)?;
        true
    };
    unpack(&archive, to, &spec.folder)?;
    if fetched {
        let _ = std::fs::remove_file(&archive);
    }
    Ok(target)
}

fn md5_file(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Stream `spec.url` into `dest`, hashing as it arrives; the file appears only when complete
/// and its checksum matches.
fn fetch(spec: &ArchiveSpec, dest: &Path) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut resp = agent
        .get(&spec.url)
        .call()
        .with_context(|| format!("downloading {}", spec.url))?;
    let total = resp.body().content_length();
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(spec.file.clone());
    let part = dest.with_extension("part");
    let result = (|| -> anyhow::Result<(String, u64)> {
        let mut out = std::fs::File::create(&part).with_context(|| format!("creating {}", part.display()))?;
        let mut reader = resp.body_mut().as_reader();
        let mut h = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("reading {} after {got} bytes", spec.url))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n])
                .with_context(|| format!("writing {}", part.display()))?;
            got += n as u64;
            bar.set_position(got);
        }
        out.sync_all()?;
        Ok((format!("{:x}", h.finalize()), got))
    })();
    bar.finish_and_clear();
    let (digest, got) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    if let Some(n) = total.filter(|&n| n != got) {
        let _ = std::fs::remove_file(&part);
        bail!("{}: expected {n} bytes but received {got}", spec.url);
    }
    if digest != spec.md5.to_ascii_lowercase() {
        let _ = std::fs::remove_file(&part);
        bail!(
            "checksum mismatch for {} ({got} bytes): MD5 {digest}, expected {}; the file was deleted",
            spec.url,
            spec.md5
        );
    }
    std::fs::rename(&part, dest).with_context(|| format!("renaming {} to {}", part.display(), dest.display()))?;
    Ok(())
}

/// Unpack the .tar.gz into a scratch folder inside `to`, then move `folder` into place, so an
/// interrupted unpack never looks like a complete dataset.
fn unpack(archive: &Path, to: &Path, folder: &str) -> anyhow::Result<()> {
    let scratch = to.join(format!(".unpack-{}-{}", folder, std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let result = (|| -> anyhow::Result<()> {
        let f = std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
        // `unpack` refuses entries that would land outside `scratch` (.. or absolute paths).
        tar.unpack(&scratch)
            .with_context(|| format!("unpacking {}", archive.display()))?;
        let inner = scratch.join(folder);
        if !inner.is_dir() {
            bail!("{} does not contain the folder {folder}/", archive.display());
        }
        std::fs::rename(&inner, to.join(folder))?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
