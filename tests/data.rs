mod common;
use common::Rng;
use simclr_wgpu::data::{self, folder, DatasetKind, LoadOptions, Sampler, Split};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `$SIMCLR_DATA` or `../shared/data`, or None with a message (then the test returns early).
fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("SIMCLR_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("cifar-10-batches-bin").is_dir() || dir.join("data_batch_1.bin").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: CIFAR-10 not found in {} (set SIMCLR_DATA)", dir.display());
        None
    }
}

/// A fresh scratch folder under the target dir.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("data-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn cifar10_loads_with_the_official_counts_labels_and_bytes() {
    let Some(dir) = shared_data() else { return };
    let train = data::load(DatasetKind::Cifar10, &dir, Split::Train).unwrap();
    let test = data::load(DatasetKind::Cifar10, &dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (50_000, 10_000));
    assert_eq!((train.height, train.width), (32, 32));
    assert_eq!(train.classes.len(), 10);
    assert_eq!(train.classes[0], "airplane");
    for (ds, per_class) in [(&train, 5000), (&test, 1000)] {
        let mut counts = [0usize; 10];
        for &l in ds.labels.as_ref().unwrap() {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [per_class; 10], "{}", ds.name);
    }
    // First record of each file, straight from the bytes: label, then R, G, B planes.
    let root = if dir.join("cifar-10-batches-bin").is_dir() {
        dir.join("cifar-10-batches-bin")
    } else {
        dir.clone()
    };
    for (ds, file, first) in [
        (&train, "data_batch_1.bin", 0),
        (&train, "data_batch_2.bin", 10_000),
        (&test, "test_batch.bin", 0),
    ] {
        let mut rec = vec![0u8; 3073];
        std::fs::File::open(root.join(file))
            .unwrap()
            .read_exact(&mut rec)
            .unwrap();
        assert_eq!(ds.label(first), Some(rec[0] as u32));
        let img = ds.image(first);
        for p in [0usize, 1, 31, 32, 500, 1023] {
            assert_eq!(
                [img[3 * p], img[3 * p + 1], img[3 * p + 2]],
                [rec[1 + p], rec[1025 + p], rec[2049 + p]]
            );
        }
    }
    // The batches folder itself works as --data too.
    let direct = data::load(DatasetKind::Cifar10, &root, Split::Test).unwrap();
    assert_eq!(direct.images, test.images);
    // Channel statistics match the published ones used for normalisation.
    let (mean, std) = train.channel_stats();
    for c in 0..3 {
        assert!(
            (mean[c] - train.mean[c]).abs() < 6e-4 && (std[c] - train.std[c]).abs() < 6e-4,
            "{mean:?} {std:?}"
        );
    }
    let sub = test.subset(&[5, 0]);
    assert_eq!(sub.len(), 2);
    assert_eq!(sub.image(1), test.image(0));
    assert_eq!(sub.labels.as_ref().unwrap()[0], test.label(5).unwrap());
}

/// A small CIFAR-10 layout: `n` records per file.
fn tiny_cifar(dir: &Path, n: usize) -> Vec<u8> {
    let d = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&d).unwrap();
    let mut rng = Rng::new(5);
    let mut test = Vec::new();
    for f in [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ] {
        let mut bytes = Vec::new();
        for r in 0..n {
            bytes.push((r % 10) as u8);
            bytes.extend((0..3072).map(|_| (rng.next_u32() % 256) as u8));
        }
        std::fs::write(d.join(format!("{f}.bin")), &bytes).unwrap();
        test = bytes;
    }
    std::fs::write(
        d.join("batches.meta.txt"),
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n",
    )
    .unwrap();
    test
}

#[test]
fn bad_cifar_files_give_messages_naming_file_and_size() {
    let dir = scratch("truncated");
    tiny_cifar(&dir, 2);
    let ok = data::load(DatasetKind::Cifar10, &dir, Split::Train).unwrap();
    assert_eq!(ok.len(), 10);
    assert_eq!(ok.classes[9], "truck");

    let f = dir.join("cifar-10-batches-bin/data_batch_3.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..3073 + 100]).unwrap();
    let err = format!(
        "{:#}",
        data::load(DatasetKind::Cifar10, &dir, Split::Train).unwrap_err()
    );
    assert!(err.contains("data_batch_3.bin") && err.contains("3173 bytes"), "{err}");

    std::fs::remove_file(&f).unwrap();
    let err = format!(
        "{:#}",
        data::load(DatasetKind::Cifar10, &dir, Split::Train).unwrap_err()
    );
    assert!(err.contains("data_batch_3.bin") && err.contains("missing"), "{err}");

    let err = format!(
        "{:#}",
        data::load(DatasetKind::Cifar10, &dir.join("nope"), Split::Test).unwrap_err()
    );
    assert!(err.contains("nope") && err.contains("does not exist"), "{err}");
    let err = format!(
        "{:#}",
        data::load(DatasetKind::Cifar100, &dir, Split::Test).unwrap_err()
    );
    assert!(err.contains("test.bin"), "{err}");
}

fn save_png(path: &Path, img: image::DynamicImage) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(snapshot(&p));
        } else {
            let m = std::fs::metadata(&p).unwrap();
            v.push((p, m.len(), m.modified().unwrap()));
        }
    }
    v.sort();
    v
}

#[test]
fn image_folders_convert_resize_skip_and_cache() {
    let dir = scratch("folder");
    let root = dir.join("images");
    let rgb = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30) as u8, (y * 30) as u8, 77]));
    save_png(&root.join("cats/rgb.png"), rgb.clone().into());
    save_png(
        &root.join("cats/gray.png"),
        image::GrayImage::from_pixel(8, 8, image::Luma([200])).into(),
    );
    let rgba = image::RgbaImage::from_pixel(8, 8, image::Rgba([10, 20, 30, 0]));
    save_png(&root.join("dogs/rgba.png"), rgba.into());
    save_png(
        &root.join("dogs/big.png"),
        image::RgbImage::from_pixel(20, 12, image::Rgb([1, 2, 3])).into(),
    );
    std::fs::write(root.join("dogs/garbage.png"), b"not a png at all").unwrap();
    std::fs::write(root.join("dogs/notes.txt"), b"hello").unwrap();
    let before = snapshot(&root);

    let opts = LoadOptions {
        image_size: Some(8),
        cache_dir: Some(dir.join("cache")),
        ..Default::default()
    };
    let (ds, report) = folder::load(&root, Split::Train, &opts).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.classes, ["cats", "dogs"]);
    // Sorted file names within each class: big, garbage (skipped), rgba.
    assert_eq!(ds.labels.as_deref(), Some(&[0, 0, 1, 1][..]));
    assert_eq!(
        (report.skipped, report.skipped_names.clone()),
        (1, vec!["dogs/garbage.png".to_string()])
    );
    assert!(report.skipped_message().contains("garbage.png"));
    assert_eq!((report.ignored, report.resized, report.converted), (1, 1, 2));
    assert!(!report.from_cache);
    assert_eq!(ds.image(0), &[200u8; 8 * 8 * 3][..], "grayscale → 3 equal channels");
    assert_eq!(ds.image(1), rgb.as_raw().as_slice(), "same size: bytes unchanged");
    assert_eq!(&ds.image(2)[..3], &[1, 2, 3], "20×12 → 8×8, constant colour kept");
    assert_eq!(&ds.image(3)[..6], &[10, 20, 30, 10, 20, 30], "alpha dropped");

    let (again, r2) = folder::load(&root, Split::Train, &opts).unwrap();
    assert!(r2.from_cache);
    assert_eq!(
        (again.images, again.labels, r2.skipped),
        (ds.images.clone(), ds.labels.clone(), 1)
    );
    assert_eq!(snapshot(&root), before, "the user's folder is not modified");

    // A changed file invalidates the cache.
    save_png(
        &root.join("cats/rgb.png"),
        image::RgbImage::from_pixel(8, 9, image::Rgb([9, 9, 9])).into(),
    );
    let (changed, r3) = folder::load(&root, Split::Train, &opts).unwrap();
    assert!(!r3.from_cache);
    assert_eq!(&changed.image(1)[..3], &[9, 9, 9]);

    let strict = LoadOptions {
        strict: true,
        ..opts.clone()
    };
    let err = format!("{:#}", folder::load(&root, Split::Train, &strict).unwrap_err());
    assert!(err.contains("garbage.png"), "{err}");

    // Mixed sizes without a given size: the default working size.
    let auto = LoadOptions {
        image_size: None,
        no_cache: true,
        ..Default::default()
    };
    let (mixed, _) = folder::load(&root, Split::Train, &auto).unwrap();
    assert_eq!(
        (mixed.height, mixed.width),
        (folder::DEFAULT_FOLDER_SIZE, folder::DEFAULT_FOLDER_SIZE)
    );

    // Flat folder: unlabeled, native size kept when all images share it.
    let flat = dir.join("flat");
    save_png(&flat.join("a.png"), rgb.clone().into());
    save_png(&flat.join("b.png"), rgb.into());
    let (f, _) = folder::load(&flat, Split::Train, &auto).unwrap();
    assert_eq!((f.len(), f.height, f.width, f.labels.is_none()), (2, 8, 8, true));
    assert!(format!("{:#}", folder::load(&flat, Split::Test, &auto).unwrap_err()).contains("test"));

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("readme.txt"), b"x").unwrap();
    let err = format!(
        "{:#}",
        data::load(DatasetKind::Folder, &empty, Split::Train).unwrap_err()
    );
    assert!(err.contains("no images") && err.contains("empty"), "{err}");
}

#[test]
fn sampler_is_a_pure_function_of_seed_and_epoch() {
    let s = Sampler::new(103, 10, false, 42).unwrap();
    let a = s.batches(3);
    assert_eq!(a, s.batches(3));
    assert_eq!(a, Sampler::new(103, 10, false, 42).unwrap().batches(3));
    assert_ne!(a, s.batches(4));
    assert_ne!(a, Sampler::new(103, 10, false, 43).unwrap().batches(3));
    assert_eq!(a.len(), 11);
    assert_eq!(s.batches_per_epoch(), 11);
    assert_eq!(a.last().unwrap().len(), 3);
    let mut all: Vec<u32> = a.concat();
    all.sort();
    assert_eq!(all, (0..103).collect::<Vec<u32>>());

    let d = Sampler::new(103, 10, true, 42).unwrap();
    let b = d.batches(3);
    assert_eq!((b.len(), d.batches_per_epoch()), (10, 10));
    assert!(b.iter().all(|x| x.len() == 10));
    assert_eq!(b[..], a[..10], "drop_last only drops the short tail");
    // Not the identity order.
    assert_ne!(s.order(0), (0..103).collect::<Vec<u32>>());
    assert!(Sampler::new(5, 10, true, 0).is_err());
    assert!(Sampler::new(5, 0, false, 0).is_err());
}

/// Serve `body` at `path` (404 elsewhere) on 127.0.0.1 from a background thread.
fn serve(path: &'static str, body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut head = Vec::new();
            let mut b = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&b[..n]),
                }
            }
            let found = String::from_utf8_lossy(&head).starts_with(&format!("GET {path} "));
            let (status, data) = if found {
                ("200 OK", &body[..])
            } else {
                ("404 Not Found", &b"no"[..])
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = s.write_all(data);
        }
    });
    format!("http://{addr}")
}

#[test]
fn download_fetches_checks_and_unpacks_from_a_local_server() {
    use md5::Digest;
    let src = scratch("download-src");
    let test_bytes = tiny_cifar(&src, 3);
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    tar.append_dir_all("cifar-10-batches-bin", src.join("cifar-10-batches-bin"))
        .unwrap();
    let archive = tar.into_inner().unwrap().finish().unwrap();
    let md5 = format!("{:x}", md5::Md5::digest(&archive));
    let base = serve("/cifar-10-binary.tar.gz", archive);

    let to = scratch("download-to");
    let spec = data::ArchiveSpec {
        md5,
        ..data::download::spec(DatasetKind::Cifar10, Some(&base)).unwrap()
    };
    let got = data::download_archive(&spec, &to).unwrap();
    assert_eq!(got, to.join("cifar-10-batches-bin"));
    let ds = data::load(DatasetKind::Cifar10, &to, Split::Test).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.label(2), Some(test_bytes[2 * 3073] as u32));
    let leftovers: Vec<_> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["cifar-10-batches-bin"], "archive and scratch removed");
    // Already there: nothing fetched.
    assert_eq!(data::download_archive(&spec, &to).unwrap(), got);

    // The official checksum does not match the test archive: error, nothing left behind.
    let to2 = scratch("download-bad");
    let err = format!(
        "{:#}",
        data::download(DatasetKind::Cifar10, &to2, Some(&base)).unwrap_err()
    );
    assert!(
        err.contains("checksum mismatch") && err.contains("c32a1d4ab5d03f1284b67883e8d87530"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&to2).unwrap().count(), 0);
    let err = format!(
        "{:#}",
        data::download(DatasetKind::Cifar100, &to2, Some(&base)).unwrap_err()
    );
    assert!(err.contains("404") && err.contains("cifar-100-binary.tar.gz"), "{err}");
}

#[test]
fn stl10_and_cifar100_layouts_decode_to_hwc() {
    let dir = scratch("stl10");
    let d = dir.join("stl10_binary");
    std::fs::create_dir_all(&d).unwrap();
    // Pixel value from (image, channel, row, col); STL-10 stores each plane column-major.
    let f = |i: usize, c: usize, row: usize, col: usize| ((i * 7 + c * 50 + row * 3 + col * 5) % 256) as u8;
    let mut x = Vec::new();
    for i in 0..2 {
        for c in 0..3 {
            for col in 0..96 {
                for row in 0..96 {
                    x.push(f(i, c, row, col));
                }
            }
        }
    }
    std::fs::write(d.join("train_X.bin"), &x).unwrap();
    std::fs::write(d.join("unlabeled_X.bin"), &x).unwrap();
    std::fs::write(d.join("train_y.bin"), [3u8, 10]).unwrap();
    let ds = data::load(DatasetKind::Stl10, &dir, Split::Train).unwrap();
    assert_eq!((ds.len(), ds.height, ds.width), (2, 96, 96));
    assert_eq!(ds.labels.as_deref(), Some(&[2, 9][..]));
    for (i, row, col) in [(0, 0, 1), (1, 5, 90), (1, 95, 0)] {
        let px = &ds.image(i)[(row * 96 + col) * 3..][..3];
        assert_eq!(
            px,
            [f(i, 0, row, col), f(i, 1, row, col), f(i, 2, row, col)],
            "image {i} ({row}, {col})"
        );
    }
    let un = data::load(DatasetKind::Stl10, &d, Split::Unlabeled).unwrap();
    assert_eq!((un.len(), un.labels.is_none()), (2, true));
    assert_eq!(un.images, ds.images);
    std::fs::write(d.join("train_y.bin"), [3u8, 0]).unwrap();
    let err = format!("{:#}", data::load(DatasetKind::Stl10, &dir, Split::Train).unwrap_err());
    assert!(err.contains("train_y.bin") && err.contains("label 0"), "{err}");
    std::fs::write(d.join("train_X.bin"), &x[..1000]).unwrap();
    let err = format!("{:#}", data::load(DatasetKind::Stl10, &dir, Split::Train).unwrap_err());
    assert!(err.contains("train_X.bin") && err.contains("1000 bytes"), "{err}");

    let dir = scratch("cifar100");
    let d = dir.join("cifar-100-binary");
    std::fs::create_dir_all(&d).unwrap();
    let mut rec = vec![4u8, 87];
    rec.extend((0..3072).map(|i| (i / 1024 * 100 + i % 1024 % 7) as u8));
    std::fs::write(d.join("test.bin"), &rec).unwrap();
    let ds = data::load(DatasetKind::Cifar100, &dir, Split::Test).unwrap();
    assert_eq!((ds.len(), ds.label(0), ds.classes.len()), (1, Some(87), 100));
    assert_eq!(&ds.image(0)[..6], &[0, 100, 200, 1, 101, 201]);
}
