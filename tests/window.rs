//! The desktop app in a real X11 window: `simclr gui` starts under Xvfb (installed by
//! `.ci/install-deps`), draws its first frames through eframe's wgpu surface, and the root
//! window's screenshot (`xwd`) is not blank. `tests/app.rs` covers the panels headless; this
//! covers the window system path they skip. Skips when Xvfb or xwd is not installed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when dropped, so a failed assertion leaves no Xvfb or app behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An X display number whose socket is free.
fn free_display() -> u32 {
    let base = 90 + std::process::id() % 100;
    (base..base + 100)
        .find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
        .expect("no free X display number")
}

/// Width, height and pixels (0xRRGGBB) of an X Window Dump of a 24/32-bit TrueColor screen.
fn xwd_pixels(b: &[u8]) -> (usize, usize, Vec<u32>) {
    let be = |i: usize| u32::from_be_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
    let (header, width, height) = (be(0) as usize, be(4) as usize, be(5) as usize);
    let (bits_per_pixel, bytes_per_line, ncolors) = (be(11), be(12) as usize, be(19) as usize);
    let msb_first = be(7) == 1;
    assert_eq!(bits_per_pixel, 32, "expected a 32-bit screen dump");
    let data = &b[header + 12 * ncolors..];
    assert!(data.len() >= bytes_per_line * height, "truncated screen dump");
    let mut out = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let p: [u8; 4] = data[y * bytes_per_line + 4 * x..][..4].try_into().unwrap();
            let v = if msb_first {
                u32::from_be_bytes(p)
            } else {
                u32::from_le_bytes(p)
            };
            out.push(v & 0xff_ffff);
        }
    }
    (width, height, out)
}

#[test]
fn gui_opens_a_window_under_xvfb_and_draws_it() {
    if !installed("Xvfb") || !installed("xwd") {
        eprintln!("skipped: Xvfb and xwd are needed (.ci/install-deps installs them)");
        return;
    }
    let n = free_display();
    let display = format!(":{n}");
    let _xvfb = Killed(
        Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb did not start"),
    );
    let socket = format!("/tmp/.X11-unix/X{n}");
    let start = Instant::now();
    while !Path::new(&socket).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Xvfb made no display {display}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::env::temp_dir().join(format!("simclr-window-{}.log", std::process::id()));
    let mut app = Killed(
        Command::new(env!("CARGO_BIN_EXE_simclr"))
            .arg("gui")
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .env("WGPU_BACKEND", "vulkan")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("simclr gui did not start"),
    );
    // Screenshots until the window shows (the first frames need the fonts and the pipelines).
    let start = Instant::now();
    let colours = loop {
        if let Some(status) = app.0.try_wait().unwrap() {
            panic!(
                "simclr gui exited ({status}) instead of showing its window:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let dump = Command::new("xwd")
            .args(["-root", "-silent", "-display", display.as_str()])
            .output()
            .expect("xwd did not run");
        assert!(dump.status.success(), "xwd failed on {display}");
        let (w, h, mut px) = xwd_pixels(&dump.stdout);
        let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("window.png");
        let rgb = px
            .iter()
            .flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8])
            .collect();
        image::RgbImage::from_raw(w as u32, h as u32, rgb)
            .unwrap()
            .save(&png)
            .unwrap();
        px.sort_unstable();
        px.dedup();
        if px.len() >= 16 || start.elapsed() > Duration::from_secs(90) {
            eprintln!("{} colours on the screen: {}", px.len(), png.display());
            break px.len();
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        colours >= 16,
        "the screen stayed blank ({colours} colours) for 90 s:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let _ = std::fs::remove_file(&log);
}
