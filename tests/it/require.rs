//! Tests that need a real program (chromedriver, postfix, swaks, node …) ask for
//! it here. When it is missing the test fails with one line that names the
//! program and the command that installs it, never with a backtrace wall.
//!
//! Shared by the test binaries: `mod require;` in tests/it/main.rs, and
//! `#[path = "../it/require.rs"] mod require;` in the others.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The README's test command; it installs every program the tests need.
pub const INSTALL: &str = "./scripts/test";

/// The full path of `name`: `$KEYGATE_<NAME>` when set (e.g. `KEYGATE_CHROMEDRIVER`;
/// non-alphanumerics become `_`), else the first executable `name` on `PATH`.
/// `why` says what needs it, e.g. "the browser tests".
///
/// Fails the test with one line when it is missing:
/// `swaks not found on PATH (needed by the SMTP tests): run ./scripts/test, which installs it`.
/// The line is the panic's message and is printed once; the panic hook is not run
/// (`resume_unwind`), so no location and no backtrace follow it, even with
/// `RUST_BACKTRACE=1`.
pub fn require_program(name: &str, why: &str) -> PathBuf {
    match find_program(name) {
        Ok(path) => path,
        Err(where_) => fail_one_line(&format!(
            "{name} not found {where_} (needed by {why}): run {INSTALL}, which installs it"
        )),
    }
}

/// Fails the test with exactly this line: printed once, no location, no
/// backtrace (the panic hook is not run).
pub fn fail_one_line(line: &str) -> ! {
    eprintln!("{line}");
    std::panic::resume_unwind(Box::new(line.to_string()))
}

/// Like [`require_program`], but `None` instead of a panic, for tests that can
/// do without the program.
pub fn find(name: &str) -> Option<PathBuf> {
    find_program(name).ok()
}

fn env_var(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("KEYGATE_{upper}")
}

fn find_program(name: &str) -> Result<PathBuf, String> {
    let var = env_var(name);
    if let Some(path) = std::env::var_os(&var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!("at {} (from {var})", path.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    // Programs such as postfix live in sbin, which a developer's PATH may lack.
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| "on PATH".to_string())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_on_path() {
        let sh = require_program("sh", "this test");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
    }

    #[test]
    fn a_missing_program_is_one_line_naming_it_and_the_install_command() {
        let name = "keygate-no-such-program";
        let err = std::panic::catch_unwind(|| require_program(name, "this test"))
            .expect_err("a missing program panics");
        let msg = err
            .downcast_ref::<String>()
            .cloned()
            .expect("a formatted message");
        assert_eq!(
            msg,
            format!(
                "{name} not found on PATH (needed by this test): run ./scripts/test, which installs it"
            )
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn the_variable_names_the_program() {
        assert_eq!(env_var("chromedriver"), "KEYGATE_CHROMEDRIVER");
        assert_eq!(env_var("chromium-driver"), "KEYGATE_CHROMIUM_DRIVER");
    }
}
