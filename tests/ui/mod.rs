//! Browser tests: Debian's headless Chromium, driven through chromedriver
//! (WebDriver, `fantoccini`), against the real binaries of a deployment
//! (`sentinel::deploy`).
//!
//! Every test checks what a person cannot see but must be able to rely
//! on: every request the page made went to the binary that served it
//! (outside hosts also resolve nowhere), and axe-core (vendored here, for
//! the tests only) finds no critical accessibility violation. A failing
//! test keeps a screenshot in `target/ui-screenshots/`.
//!
//! The window is 1024×600, a rugged tablet's screen. Browser tests run one
//! at a time (each starts a browser, a hub and nodes; the machine may
//! have two cores).

mod admin;
mod analysis;
mod browser;
mod exports;
mod officer;
mod pages;
mod receiver;
mod redact;
mod webhooks;

pub use browser::*;
