//! The browser-only part of the browser tests' harness: a tiny HTTP server that
//! plays the OAuth client's redirect URI, chromedriver driving a headless
//! Chromium, screenshots, and `browser_test`, which runs one test over a fresh
//! `keygate serve` (the it suite's `Server` and `Fixture`, shared through
//! `#[path]`).
//!
//! Chromium and chromedriver are taken from `PATH` (or `KEYGATE_CHROMIUM`,
//! `KEYGATE_CHROMEDRIVER`); nothing is ever downloaded. When they are missing
//! each test fails with one line that says so and names `./scripts/test`.

use crate::require::require_program;
use crate::support::{free_port, unique, Backend, Fixture, Server, PASSWORD};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one wait for the browser or a process may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// One browser at a time: the tests share a small machine with the build.
static SERIAL: Mutex<()> = Mutex::new(());

/// A fresh temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("keygate-browser-{what}-{}", unique()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process in its own process group; the whole group is killed on drop
/// (chromedriver's Chromium included, should the session not have ended).
struct Guarded {
    child: Child,
}

impl Guarded {
    fn spawn(cmd: &mut Command) -> std::io::Result<Guarded> {
        cmd.process_group(0).spawn().map(|child| Guarded { child })
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // The group's id is the child's id (process_group(0)).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OAuth client's redirect URI: answers every request with a small page.
pub struct Callback {
    pub uri: String,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub const CALLBACK_TEXT: &str = "callback received";

impl Callback {
    pub fn start() -> Callback {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind callback listener");
        let port = listener.local_addr().expect("callback address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    answer(stream);
                }
            }
        });
        Callback {
            uri: format!("http://127.0.0.1:{port}/callback"),
            stop,
            port,
            thread: Some(thread),
        }
    }
}

fn answer(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    // The request line, shown so that screenshots say what the client received.
    let head = String::from_utf8_lossy(&request);
    let target = head.split(' ').nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let shown: String = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Client app</title></head>\
         <body><h1 id=\"callback\">{CALLBACK_TEXT}</h1><pre id=\"query\">{shown}</pre></body></html>"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// chromedriver on a free port, with a fresh Chromium profile.
struct ChromeDriver {
    process: Guarded,
    dir: TempDir,
    url: String,
    chromium: String,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        let driver = require_program("chromedriver", "the browser tests");
        let chromium = require_program("chromium", "the browser tests")
            .display()
            .to_string();
        let dir = TempDir::new("chrome");
        let port = free_port();
        let process = Guarded::spawn(
            Command::new(&driver)
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    dir.0.join("chromedriver.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver.display()));
        let mut cd = ChromeDriver {
            process,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = ureq::get(&format!("{}/status", cd.url))
                .timeout(Duration::from_secs(1))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            if let Some(status) = cd.process.exited() {
                panic!("chromedriver exited ({status}): {}", cd.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start: {}",
                cd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cd
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.0.join("chromedriver.log")).unwrap_or_default();
        // The end says why a session could not start.
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    async fn connect(&self, extra_args: &[String]) -> Client {
        let profile = self.dir.0.join("profile");
        let user_data = format!("--user-data-dir={}", profile.display());
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            &user_data,
            "--window-size=1200,900",
        ]
        .into_iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra_args.iter().cloned());
        let caps = json!({
            "browserName": "chrome",
            "timeouts": { "pageLoad": 30000, "script": 30000, "implicit": 0 },
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
                // No password-manager bubbles over the pages under test.
                "prefs": {
                    "credentials_enable_service": false,
                    "profile.password_manager_enabled": false,
                    "profile.password_manager_leak_detection": false,
                },
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "could not start a Chromium session through chromedriver: {e}\n{}",
                    self.log()
                )
            })
    }
}

/// WebDriver key codes (W3C WebDriver, "keyboard actions").
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const ESCAPE: &str = "\u{E00C}";

/// The browser of one test, and where its screenshots go.
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    /// chromedriver's address, for its Chrome DevTools endpoint.
    driver: String,
    test: &'static str,
}

pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Waits for an element matching a CSS selector.
    pub async fn wait_css(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {css:?} on {} within {WAIT:?}: {e}\n{}",
                self.url().await,
                self.body_text().await
            ),
        }
    }

    /// Waits for an element matching an XPath expression.
    pub async fn wait_xpath(&self, xpath: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(xpath))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "no element {xpath:?} on {} within {WAIT:?}: {e}\n{}",
                self.url().await,
                self.body_text().await
            ),
        }
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("<no URL: {e}>"))
    }

    /// Waits until the browser is at a URL that passes `ok`; returns it.
    pub async fn wait_url(&self, what: &str, ok: impl Fn(&url::Url) -> bool) -> url::Url {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(u) = self.client.current_url().await {
                if ok(&u) {
                    return u;
                }
                assert!(
                    Instant::now() < deadline,
                    "the browser did not reach {what} within {WAIT:?}; it is at {u}\n{}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the element found by `css` has text containing `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    if t.contains(needle) {
                        return t;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css:?} never contained {needle:?} on {}:\n{}",
                self.url().await,
                self.body_text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn click(&self, css: &str) {
        let e = self.wait_css(css).await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click {css:?}: {err}"));
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_css(css).await;
        e.clear()
            .await
            .unwrap_or_else(|err| panic!("clear {css:?}: {err}"));
        e.send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("type into {css:?}: {err}"));
    }

    /// Saves a PNG of the whole page as `target/screenshots/<test><suffix>.png`:
    /// the window is made as tall as the page for the shot, then restored.
    pub async fn screenshot(&self, suffix: &str) {
        let heights = self
            .client
            .execute(
                "return [document.documentElement.scrollHeight, window.innerHeight];",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| Some((v[0].as_u64()?, v[1].as_u64()?)));
        let size = self.client.get_window_size().await.ok();
        let mut resized = false;
        if let (Some((page, inner)), Some((width, outer))) = (heights, size) {
            if page > inner {
                let tall = (page + outer.saturating_sub(inner)).min(8000);
                resized = self
                    .client
                    .set_window_size(width as u32, tall as u32)
                    .await
                    .is_ok();
            }
        }
        let png = self.client.screenshot().await;
        if let (true, Some((width, outer))) = (resized, size) {
            let _ = self
                .client
                .set_window_size(width as u32, outer as u32)
                .await;
        }
        let png = png.unwrap_or_else(|e| panic!("screenshot: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create target/screenshots");
        let path = dir.join(format!("{}{suffix}.png", self.test));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Reloads an API key's page until its usage count reaches `at_least`;
    /// returns the count shown then.
    pub async fn wait_usage(&self, at_least: i64) -> i64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let shown = self
                .wait_css("#usage-total")
                .await
                .text()
                .await
                .unwrap_or_default();
            let n: i64 = shown
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("usage cell is not a number: {shown:?}"));
            if n >= at_least {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "usage stayed at {n} (expected {at_least}) for {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.client.refresh().await.expect("reload the page");
        }
    }

    /// Resizes the window so that the page's viewport is `width` CSS pixels
    /// wide (a phone is 390, a laptop 1280).
    pub async fn set_width(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize the window");
        // The window includes the browser's chrome: correct by the difference.
        let inner: u32 = self
            .client
            .execute("return window.innerWidth;", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(width as u64) as u32;
        if inner != width {
            let outer = width + width.saturating_sub(inner);
            self.client
                .set_window_size(outer, height)
                .await
                .expect("resize the window");
        }
    }

    /// Runs axe-core (from tests/node, pinned by its lock file) inside the page
    /// and fails on any serious or critical violation, naming each.
    pub async fn assert_accessible(&self, page: &str) {
        let axe = axe_source();
        self.client
            .execute(&axe, vec![])
            .await
            .expect("inject axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']})\
                   .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,\
                      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))))\
                   .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        let bad: Vec<&serde_json::Value> = result
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            bad.is_empty(),
            "{page}: axe-core found serious or critical violations at {}:\n{}",
            self.url().await,
            bad.iter()
                .map(|v| format!(
                    "  {} ({}): {} at {}",
                    v["id"], v["impact"], v["help"], v["nodes"]
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Fails when a visible control (button, link, input, select, textarea) is
    /// outside the viewport's width or cut off by an ancestor that clips it,
    /// naming each, with a screenshot.
    pub async fn assert_nothing_clipped(&self, page: &str) {
        let found = self
            .client
            .execute(
                "const vw = document.documentElement.clientWidth; const out = [];\
                 for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')) {\
                   const r = el.getBoundingClientRect();\
                   if (r.width === 0 && r.height === 0) continue;\
                   const cs = getComputedStyle(el); if (cs.visibility === 'hidden' || cs.display === 'none') continue;\
                   if (el.closest('.sr')) continue;\
                   let why = null; let scroller = null;\
                   for (let p = el.parentElement; p; p = p.parentElement) {\
                     const ps = getComputedStyle(p);\
                     if ((ps.overflowX === 'auto' || ps.overflowX === 'scroll') && p.scrollWidth > p.clientWidth) { scroller = p; break; }\
                   }\
                   if (scroller) {\
                     const sr = scroller.getBoundingClientRect();\
                     if (sr.left < -1 || sr.right > vw + 1) why = 'in a scrolling box that is itself off-screen';\
                   } else {\
                     if (r.left < -1 || r.right > vw + 1) why = 'outside the viewport (' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw + ')';\
                     for (let p = el.parentElement; p && !why; p = p.parentElement) {\
                       const ps = getComputedStyle(p);\
                       if (ps.overflowX === 'visible' && ps.overflowY === 'visible') continue;\
                       const pr = p.getBoundingClientRect();\
                       if (r.right > pr.right + 1 || r.left < pr.left - 1) why = 'cut off by ' + p.tagName.toLowerCase() + (p.className ? '.' + p.className : '');\
                     }\
                   }\
                   if (why) out.push((el.innerText || el.value || el.name || el.id || el.tagName).trim().slice(0, 40) + ': ' + why);\
                 }\
                 if (document.documentElement.scrollWidth > vw + 1) out.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + vw);\
                 return out;",
                vec![],
            )
            .await
            .expect("measure the controls");
        let list: Vec<String> = found
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !list.is_empty() {
            self.screenshot(&format!("-clipped-{}", page.replace(['/', ' '], "_")))
                .await;
        }
        assert!(
            list.is_empty(),
            "{page}: controls clipped or off-screen at {}:\n  {}",
            self.url().await,
            list.join("\n  ")
        );
    }

    /// Emulates `prefers-color-scheme: dark` (or light) through chromedriver's
    /// Chrome DevTools endpoint (Emulation.setEmulatedMedia), and checks that
    /// the page now sees it.
    pub async fn set_color_scheme(&self, scheme: &str) {
        let session = self
            .client
            .session_id()
            .await
            .expect("the session id")
            .expect("a session");
        let body = json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
        });
        ureq::post(&format!(
            "{}/session/{session}/goog/cdp/execute",
            self.driver
        ))
        .send_json(body)
        .unwrap_or_else(|e| panic!("emulate prefers-color-scheme: {scheme}: {e}"));
        let seen = self
            .client
            .execute(
                &format!("return matchMedia('(prefers-color-scheme: {scheme})').matches;"),
                vec![],
            )
            .await
            .expect("read the colour scheme");
        assert_eq!(seen, json!(true), "the page does not see {scheme} mode");
    }

    /// Presses keys (text or WebDriver key codes such as [`TAB`]) in the
    /// focused element, as a person at the keyboard would.
    pub async fn press(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .expect("a focused element")
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("press {keys:?}: {e}"));
    }

    /// Whether the focused element matches a CSS selector.
    pub async fn focused(&self, css: &str) -> bool {
        self.client
            .execute(
                "return !!document.activeElement && document.activeElement.matches(arguments[0]);",
                vec![json!(css)],
            )
            .await
            .expect("read the focus")
            == json!(true)
    }

    /// Presses Tab until the focus is on `css` (at most 100 times), failing
    /// when it never gets there: the control is not reachable by keyboard.
    pub async fn tab_to(&self, css: &str) {
        for _ in 0..100 {
            if self.focused(css).await {
                return;
            }
            self.press(TAB).await;
        }
        panic!("{css:?} is not reachable with Tab at {}", self.url().await);
    }

    /// Signs in on the login page the browser is at.
    pub async fn sign_in(&self, fx: &Fixture) {
        self.type_into("#email", &fx.owner_email).await;
        self.type_into("#password", PASSWORD).await;
        self.click("form[action='/login'] button[type='submit']")
            .await;
    }
}

/// Runs one browser test: a fresh keygate, callback server, chromedriver and
/// Chromium. Whatever happens, the session is closed and every process ended; on
/// failure a `<test>-failure.png` and keygate's log are kept for diagnosis.
pub fn browser_test<F, Fut>(test: &'static str, body: F)
where
    F: FnOnce(Arc<Fixture>, Browser) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    browser_test_with(
        test,
        &[],
        |redirect_uri| Fixture::with_redirect(Server::start(Backend::Sqlite), redirect_uri),
        body,
    )
}

/// [`browser_test`] with more Chromium arguments and a fixture of its own,
/// made for the callback server's redirect URI.
pub fn browser_test_with<F, Fut>(
    test: &'static str,
    chrome_args: &[String],
    fixture: impl FnOnce(&str) -> Fixture,
    body: F,
) where
    F: FnOnce(Arc<Fixture>, Browser) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let driver = ChromeDriver::start();
    let callback = Callback::start();
    let fx = Arc::new(fixture(&callback.uri));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        let client = driver.connect(chrome_args).await;
        let browser = Browser {
            client: client.clone(),
            driver: driver.url.clone(),
            test,
        };
        let local = tokio::task::LocalSet::new();
        let task = local.spawn_local(body(fx.clone(), browser.clone()));
        let result = local.run_until(task).await;
        if result.is_err() {
            let _ = tokio::time::timeout(WAIT, browser.screenshot("-failure")).await;
            eprintln!("the browser was at {}", browser.url().await);
        }
        let _ = tokio::time::timeout(WAIT, client.close()).await;
        result
    });
    if let Err(e) = outcome {
        eprintln!("--- keygate log ---\n{}", fx.server.logs());
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("{test}: {e}");
    }
}

/// axe-core's source, from the npm package tests/node pins.
fn axe_source() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        crate::require::fail_one_line(&format!(
            "axe-core not found at {} (needed by the accessibility checks): run ./scripts/test, which installs it",
            path.display()
        ))
    })
}
