//! Headless Chromium through chromedriver: found on the PATH (or `HAZEFLOW_CHROMIUM` /
//! `HAZEFLOW_CHROMEDRIVER`), started on a free port, one fresh profile per session. Also the checks
//! every page must pass in the browser (labels, overflow at the viewport width, contrast) and the
//! screenshots.
//!
//! Screenshots are written to `target/browser-screenshots/`; CI keeps that folder as an artifact,
//! so a reviewer can see each page at 1280×900 and at 375×800 without running anything.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Where screenshots go (kept as CI artifacts).
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/browser-screenshots"))
}

/// The flags Chromium needs here: headless, no sandbox (CI runs as root), no GPU, no /dev/shm (small
/// in containers), and no network of its own (this machine's network is closed).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--lang=zh-CN",
];

/// A window size.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    /// 1280×900.
    Desktop,
    /// A 375×800 phone (Chromium's mobile emulation: the viewport, touch and a mobile user agent).
    Phone,
}

impl Screen {
    /// `1280` or `375`, for file names.
    pub fn width(self) -> u32 {
        match self {
            Screen::Desktop => 1280,
            Screen::Phone => 375,
        }
    }
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn find(var: &str, names: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => on_path(names),
    }
}

/// A running chromedriver, and the Chromium it starts.
pub struct Browser {
    driver: Child,
    port: u16,
    chromium: PathBuf,
    profiles: std::sync::Mutex<Vec<TempDir>>,
}

impl Browser {
    /// Starts chromedriver; `None` (after saying so) when Chromium is not installed, unless `CI=true`,
    /// where that is a failure.
    pub async fn start() -> Option<Browser> {
        let chromium = find("HAZEFLOW_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
        let driver = find("HAZEFLOW_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but chromium or chromedriver is not installed: the browser tests must run in CI \
                     (.ci/run installs chromium, chromium-driver and fonts-wqy-microhei)"
                );
            }
            println!("skipped: chromium not installed");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let browser = Browser {
            driver: child,
            port,
            chromium,
            profiles: std::sync::Mutex::new(Vec::new()),
        };
        let http = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                return Some(browser);
            }
            assert!(Instant::now() < until, "chromedriver did not come up on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new browser session with a fresh profile.
    pub async fn session(&self, screen: Screen) -> Client {
        let profile = TempDir::new().expect("a profile folder");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = json!({ "binary": self.chromium.display().to_string(), "args": args });
        match screen {
            Screen::Desktop => args_push(&mut options, "--window-size=1280,900"),
            Screen::Phone => {
                args_push(&mut options, "--window-size=375,800");
                options["mobileEmulation"] = json!({
                    "deviceMetrics": { "width": 375, "height": 800, "pixelRatio": 1.0, "touch": true },
                    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36"
                });
            }
        }
        self.profiles.lock().unwrap_or_else(|p| p.into_inner()).push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        if let Screen::Desktop = screen {
            // The window includes what little frame headless Chromium has: size it so that the
            // viewport itself is 1280×900.
            client.set_window_size(1280, 900).await.expect("the window is resized");
            let inner = client
                .execute("return [window.innerWidth, window.innerHeight];", vec![])
                .await
                .expect("the viewport size");
            let (w, h) = (inner[0].as_u64().unwrap_or(1280), inner[1].as_u64().unwrap_or(900));
            if (w, h) != (1280, 900) {
                let (ow, oh) = client.get_window_size().await.expect("the window size");
                client
                    .set_window_size((ow + 1280 - w) as u32, (oh + 900 - h) as u32)
                    .await
                    .expect("the window is resized");
            }
        }
        client
    }

    /// Runs a scenario with a session, closes the session whatever happens, and re-raises a panic.
    pub async fn run<F, Fut>(&self, screen: Screen, scenario: F)
    where
        F: FnOnce(Client, Camera) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let client = self.session(screen).await;
        let outcome = tokio::spawn(scenario(client.clone(), self.camera(screen))).await;
        close(&client).await;
        resume(outcome);
    }

    /// Runs a scenario with two sessions side by side (say, an enterprise on a phone and the duty
    /// officer at a desk), closes both whatever happens, and re-raises a panic.
    pub async fn run_pair<F, Fut>(&self, first: Screen, second: Screen, scenario: F)
    where
        F: FnOnce((Client, Camera), (Client, Camera)) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let a = self.session(first).await;
        let b = self.session(second).await;
        let outcome = tokio::spawn(scenario((a.clone(), self.camera(first)), (b.clone(), self.camera(second)))).await;
        close(&a).await;
        close(&b).await;
        resume(outcome);
    }

    fn camera(&self, screen: Screen) -> Camera {
        Camera {
            driver_port: self.port,
            screen,
        }
    }
}

async fn close(client: &Client) {
    if let Err(e) = client.clone().close().await {
        eprintln!("closing the browser session: {e}");
    }
}

fn resume(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("the scenario did not finish: {e}"),
        }
    }
}

fn args_push(options: &mut Value, arg: &str) {
    if let Some(a) = options["args"].as_array_mut() {
        a.push(json!(arg));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Opens a page and waits until it has loaded.
pub async fn open(c: &Client, url: &str) {
    c.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    wait_for(c, "body").await;
}

/// Waits for an element.
pub async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

/// The text of an element. An element replaced while it is read (the page changed under a click:
/// "stale element reference") is looked up again, for up to 15 s.
pub async fn text_of(c: &Client, css: &str) -> String {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        match wait_for(c, css).await.text().await {
            Ok(text) => return text,
            Err(e) if Instant::now() < until && e.to_string().contains("stale element") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no text in {css}: {e}"),
        }
    }
}

/// The path of the current page.
pub async fn path(c: &Client) -> String {
    c.current_url().await.expect("a URL").path().to_string()
}

/// Runs a script and returns its result.
pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Presses a key (down and up) on whatever has the focus.
pub async fn press(c: &Client, key: Key) {
    let k: char = key.into();
    let actions = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: k })
        .then(KeyAction::Up { value: k });
    c.perform_actions(actions).await.expect("the key is pressed");
}

/// Takes screenshots of a session: what chromedriver offers (the viewport), and the whole page
/// through its Chrome DevTools endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Camera {
    driver_port: u16,
    screen: Screen,
}

impl Camera {
    /// Saves the viewport as `NAME-WIDTH.png` and the whole page as `NAME-WIDTH-full.png`.
    pub async fn shoot(&self, c: &Client, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        let png = c.screenshot().await.expect("a screenshot");
        let file = dir.join(format!("{name}-{}.png", self.screen.width()));
        std::fs::write(&file, png).expect("the screenshot is written");
        if let Some(full) = self.full_page(c).await {
            std::fs::write(dir.join(format!("{name}-{}-full.png", self.screen.width())), full).expect("the screenshot is written");
        }
        file
    }

    /// The whole page (`Page.captureScreenshot` beyond the viewport); `None` if the driver cannot.
    async fn full_page(&self, c: &Client) -> Option<Vec<u8>> {
        let session = c.session_id().await.ok()??;
        let size = c
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight];",
                vec![],
            )
            .await
            .ok()?;
        let (w, h) = (size[0].as_f64()?, size[1].as_f64()?.min(16_000.0));
        let body = json!({ "cmd": "Page.captureScreenshot", "params": {
            "format": "png", "captureBeyondViewport": true, "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 } } });
        let url = format!("http://127.0.0.1:{}/session/{session}/goog/cdp/execute", self.driver_port);
        let reply: Value = reqwest::Client::new().post(url).json(&body).send().await.ok()?.json().await.ok()?;
        base64_decode(reply["value"]["data"].as_str()?)
    }
}

/// Standard base64 (the DevTools screenshot encoding).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= value(*b)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    Some(out)
}

/// Form fields without a label (or an ARIA name), and buttons without text.
const UNLABELLED_JS: &str = r#"
var out = [];
document.querySelectorAll('input, select, textarea').forEach(function (el) {
  if (['hidden', 'submit', 'button', 'reset'].indexOf(el.type) >= 0) return;
  var named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
  if (!named) out.push(el.outerHTML.slice(0, 160));
});
document.querySelectorAll('button, a[href]').forEach(function (el) {
  if (!(el.textContent || '').trim() && !el.getAttribute('aria-label')) out.push(el.outerHTML.slice(0, 160));
});
return out;
"#;

/// Whether anything sticks out of the viewport sideways. The width is the layout viewport's
/// (`clientWidth`): on an emulated phone a page wider than the screen widens `innerWidth` to fit
/// (375 becomes 460), so comparing with `innerWidth` alone would hide the overflow it measures.
const OVERFLOW_JS: &str = r#"
var w = Math.min(window.innerWidth, document.documentElement.clientWidth);
var out = [];
document.querySelectorAll('body *').forEach(function (el) {
  var r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return;
  if (r.right > w + 0.5 || r.left < -0.5) {
    var clipped = false;
    for (var p = el.parentElement; p; p = p.parentElement) {
      var s = getComputedStyle(p);
      if (s.overflowX !== 'visible' && p !== document.body && p !== document.documentElement) { clipped = true; break; }
    }
    if (!clipped) out.push(el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + el.className : '') + ' right=' + Math.round(r.right) + ' text=' + (el.textContent || '').trim().slice(0, 40));
  }
});
return { scrollWidth: document.documentElement.scrollWidth, innerWidth: w, offenders: out.slice(0, 20) };
"#;

/// Text whose contrast with what is behind it is below WCAG AA (4.5:1; 3:1 for large text).
const CONTRAST_JS: &str = r#"
function parse(c) {
  var m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return [0, 0, 0, 0];
  var p = m[1].split(',').map(function (x) { return parseFloat(x); });
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
}
function over(top, bottom) {
  var a = top[3];
  return [top[0] * a + bottom[0] * (1 - a), top[1] * a + bottom[1] * (1 - a), top[2] * a + bottom[2] * (1 - a), 1];
}
function background(el) {
  var layers = [];
  for (var e = el; e; e = e.parentElement) {
    var c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  var bg = [255, 255, 255, 1];
  for (var i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
  return bg;
}
function lum(c) {
  var f = function (v) { v = v / 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
var out = [];
document.querySelectorAll('body *').forEach(function (el) {
  if (el.closest('svg')) return;
  var own = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (!own) return;
  var r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return;
  var s = getComputedStyle(el);
  if (s.visibility === 'hidden') return;
  var bg = background(el);
  var fg = over(parse(s.color), bg);
  var a = lum(fg), b = lum(bg);
  var ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  var size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
  var need = (size >= 24 || (size >= 18.66 && bold)) ? 3 : 4.5;
  if (ratio < need) out.push(el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 30) + '" ' + s.color + ' on rgb(' + bg.slice(0, 3).map(Math.round) + ') = ' + ratio.toFixed(2));
});
return out.slice(0, 20);
"#;

/// Checks what every page must pass: labelled fields, nothing wider than the viewport, readable text.
pub async fn check_basics(c: &Client, what: &str) {
    let unlabelled = js(c, UNLABELLED_JS).await;
    assert_eq!(unlabelled, json!([]), "{what}: fields or buttons without a label");
    let overflow = js(c, OVERFLOW_JS).await;
    let (sw, iw) = (
        overflow["scrollWidth"].as_f64().unwrap_or(f64::MAX),
        overflow["innerWidth"].as_f64().unwrap_or(0.0),
    );
    assert!(
        sw <= iw,
        "{what}: the page is {sw} px wide in a {iw} px viewport: {}",
        overflow["offenders"]
    );
    assert_eq!(
        overflow["offenders"],
        json!([]),
        "{what}: elements stick out of the {iw} px viewport"
    );
    let low = js(c, CONTRAST_JS).await;
    assert_eq!(low, json!([]), "{what}: text below WCAG AA contrast");
}

/// Every form control and button with the name a screen reader announces for it (its
/// `aria-labelledby`, `aria-label`, `<label for>` or wrapping `<label>`, or a button's text):
/// `[control, name]`, the control as `tag[type] name` (a checkbox `tag[type] name=value`).
const CONTROL_NAMES_JS: &str = r#"
function text(el) { return (el.textContent || '').replace(/\s+/g, ' ').trim(); }
var out = [];
document.querySelectorAll('input, select, textarea, button').forEach(function (el) {
  if (el.type === 'hidden') return;
  var name = '';
  var by = el.getAttribute('aria-labelledby');
  if (by) name = by.split(/\s+/).map(function (id) { var t = document.getElementById(id); return t ? text(t) : ''; }).join(' ').trim();
  if (!name) name = (el.getAttribute('aria-label') || '').trim();
  if (!name && el.labels) name = Array.prototype.map.call(el.labels, text).join(' ').trim();
  if (!name && el.tagName === 'BUTTON') name = text(el);
  out.push([el.tagName.toLowerCase() + '[' + el.type + ']' + (el.name ? ' ' + el.name : '') + (el.type === 'checkbox' ? '=' + el.value : ''), name]);
});
return out;
"#;

/// The form controls and buttons of the page with their accessible names (see `CONTROL_NAMES_JS`).
pub async fn control_names(c: &Client) -> Vec<(String, String)> {
    let v = js(c, CONTROL_NAMES_JS).await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or_default().to_string(),
                        p[1].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What has the focus, named as `control_names` names controls (`body` when nothing has).
pub async fn focused(c: &Client) -> String {
    let v = js(
        c,
        "var e = document.activeElement; if (!e || e === document.body) return 'body'; \
         return e.tagName.toLowerCase() + '[' + (e.type || '') + ']' + (e.name ? ' ' + e.name : '') \
           + (e.type === 'checkbox' ? '=' + e.value : '');",
    )
    .await;
    v.as_str().unwrap_or_default().to_string()
}

/// Whether the focused element shows its focus (an outline that is neither `none` nor 0 px wide).
pub async fn focus_shows(c: &Client) -> (bool, String) {
    let v = js(
        c,
        "var s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor;",
    )
    .await;
    let outline = v.as_str().unwrap_or_default().to_string();
    let shows = !outline.starts_with("none") && !outline.contains(" 0px ");
    (shows, outline)
}

/// The screenshot folder, relative to the crate, for messages.
pub fn shown(p: &Path) -> String {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(p).display().to_string()
}

#[test]
fn base64_decodes_what_devtools_sends() {
    assert_eq!(base64_decode("aGF6ZWZsb3c=").as_deref(), Some(&b"hazeflow"[..]));
    assert_eq!(base64_decode("5aSq5Y6f").map(String::from_utf8), Some(Ok("太原".to_string())));
    assert_eq!(base64_decode("YQ=="), Some(b"a".to_vec()));
    assert_eq!(base64_decode("*"), None);
}
