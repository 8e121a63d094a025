//! The Images page in a real headless Chromium (Debian's chromium and
//! chromium-driver, driven over WebDriver): the Scratch form (a runtime, a
//! package found by search, an install command; installed with apt from
//! Debian's mirror on a minbase template) builds an image with the
//! modal reaching Done while log lines stream; the image is listed, set as
//! default and deleted; a failing recipe shows its failed step; the fork
//! view lists a detected package. Screenshots of the page and of the modal
//! go to docs/screenshots/ (referenced from the README).

#[path = "serve_support/mod.rs"]
mod serve_support;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serve_support::Server;
use support::*;

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        require_tool("chromedriver", "chromium-driver");
        require_tool("chromium", "chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1200,900", format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in chromium")
}

/// Waits until the page's JavaScript `cond` is true (returns its value as a string).
async fn until(c: &Client, cond: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let v = c
            .execute(&format!("return ({cond}) ? String({cond}) : null;"), vec![])
            .await
            .unwrap();
        if let Some(s) = v.as_str() {
            return s.to_string();
        }
        if Instant::now() > deadline {
            let html = c.source().await.unwrap_or_default();
            panic!(
                "timed out waiting for {what}\n{}",
                &html[..html.len().min(4000)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `css` finds, finding it again if the page re-rendered
/// it in between (search results do, as the user types).
async fn click(c: &Client, css: &str) {
    let mut last = None;
    for _ in 0..20 {
        match c.find(Locator::Css(css)).await {
            Ok(e) => match e.click().await {
                Ok(()) => return,
                Err(err) => last = Some(err.to_string()),
            },
            Err(err) => last = Some(err.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot click {css}: {}", last.unwrap_or_default());
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

fn save_screenshot(name: &str, png: &[u8]) {
    let dir = repo().join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_page_builds_lists_and_forks() {
    let t = world_tempdir();
    let store = t.path().join("store");
    let s = store.to_str().unwrap().to_string();
    // A stand-in for the blank template (Debian minbase, so the form's
    // runtime and package install with apt from Debian's mirror), and a
    // sandbox with an "installed" npm package for the fork view.
    let minbase = debian_base_in(t.path());
    let tpl = write_recipe(
        t.path(),
        "tpl.toml",
        &format!(
            "[image]\nbase = \"rootfs:{}\"\ndev_access = false\n[[steps]]\nrun = \"echo template > /template\"\n",
            minbase.display()
        ),
    );
    boxwright(&[
        "--store",
        &s,
        "build",
        tpl.to_str().unwrap(),
        "-t",
        "boxwright/template-blank",
    ])
    .ok();
    boxwright(&["--store", &s, "run", "--name", "devbox", "boxwright/template-blank", "sh", "-c",
        "mkdir -p /usr/lib/node_modules/left-pad && echo '{\"name\":\"left-pad\",\"version\":\"1.3.0\"}' > /usr/lib/node_modules/left-pad/package.json"]).ok();

    let srv = Server::start(&bin(), &store, &[]);
    let driver = Driver::start();
    let c = browser(&driver, &t.path().join("profile")).await;

    c.goto(&format!("{}/", srv.url)).await.unwrap();
    until(
        &c,
        "document.querySelector('#images tbody tr')",
        "the images list",
    )
    .await;
    let load_ms = c
        .execute("const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;", vec![])
        .await
        .unwrap();
    eprintln!("page load: {load_ms} ms");
    save_screenshot("images-page.png", &c.screenshot().await.unwrap());

    // The Scratch form: a runtime with its version, a package found by
    // search, an install command; the dev access layer is off (it would
    // fetch code-server from upstream, which this machine cannot reach).
    click(&c, "#new-build").await;
    until(
        &c,
        "document.querySelector('#build-dialog').open",
        "the build form",
    )
    .await;
    type_into(&c, "#tag", "page-built:1").await;
    click(&c, "#template").await;
    c.execute(
        "document.querySelector('#template').value = 'blank';",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("select[data-runtime='python']"))
        .await
        .expect("the python runtime's version list")
        .select_by_value("3.11")
        .await
        .unwrap();
    type_into(&c, "#pkg-search", "jq").await;
    until(
        &c,
        "document.querySelector('[data-package=jq]')",
        "package search results",
    )
    .await;
    // Let the debounced search settle before clicking.
    tokio::time::sleep(Duration::from_millis(400)).await;
    click(&c, "[data-package=jq]").await;
    let packages = c
        .execute("return document.querySelector('#packages').value;", vec![])
        .await
        .unwrap();
    assert_eq!(
        packages, "jq",
        "the search result went into the package list"
    );
    type_into(
        &c,
        "#commands",
        "echo built-from-the-page; sleep 1; echo second-line",
    )
    .await;
    click(&c, "#dev-access").await;
    click(&c, "#start-build").await;
    until(
        &c,
        "document.querySelector('#progress-dialog').open",
        "the build modal",
    )
    .await;
    until(
        &c,
        "document.querySelector('#log').textContent.includes('built-from-the-page')",
        "log lines in the modal",
    )
    .await;
    save_screenshot("build-modal.png", &c.screenshot().await.unwrap());
    until(
        &c,
        "document.querySelector('#phases li[data-phase=done]').className === 'done'",
        "Done",
    )
    .await;
    let classes = c
        .execute(
            "return [...document.querySelectorAll('#phases li')].map(l => l.className).join(',');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(classes, "done,done,done,done");
    click(&c, "#close-progress").await;

    // Listed, with what the form asked for in it; set default; deleted.
    until(
        &c,
        "document.querySelector('#images tr[data-name=\"page-built:1\"]')",
        "the new image listed",
    )
    .await;
    let inside = boxwright(&[
        "--store",
        &s,
        "run",
        "--rm",
        "page-built:1",
        "sh",
        "-c",
        "python3 --version && command -v jq",
    ])
    .ok()
    .stdout;
    assert!(
        inside.starts_with("Python 3.11") && inside.ends_with("/usr/bin/jq\n"),
        "{inside}"
    );
    click(
        &c,
        "#images tr[data-name=\"page-built:1\"] button[aria-label^=Set]",
    )
    .await;
    until(&c, "document.querySelector('#images tr[data-name=\"page-built:1\"]').textContent.includes('default')", "the default mark").await;
    c.execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
    click(&c, "#images tr[data-name=\"page-built:1\"] button.danger").await;
    until(
        &c,
        "!document.querySelector('#images tr[data-name=\"page-built:1\"]')",
        "the image gone",
    )
    .await;
    let listed = boxwright(&["--store", &s, "images", "-q"]).ok().stdout;
    assert!(!listed.contains("page-built:1"), "{listed}");

    // A failing recipe shows its failed step in the modal.
    click(&c, "#new-build").await;
    type_into(&c, "#tag", "fails:1").await;
    c.execute(
        "document.querySelector('#template').value = 'blank';",
        vec![],
    )
    .await
    .unwrap();
    type_into(&c, "#commands", "echo fine\necho about-to-fail; exit 4").await;
    let dev = c
        .execute(
            "return document.querySelector('#dev-access').checked;",
            vec![],
        )
        .await
        .unwrap();
    if dev == serde_json::Value::Bool(true) {
        click(&c, "#dev-access").await;
    }
    click(&c, "#start-build").await;
    let err = until(
        &c,
        "document.querySelector('#progress-error').textContent",
        "the failure",
    )
    .await;
    // The form keeps the last build's runtime and package: steps 1 and 2
    // are theirs (cached now), 3 is `echo fine`, 4 fails.
    assert!(err.starts_with("Step 4 failed"), "{err}");
    let log = c
        .execute("return document.querySelector('#log').textContent;", vec![])
        .await
        .unwrap();
    assert!(log.as_str().unwrap().contains("about-to-fail"), "{log}");
    click(&c, "#close-progress").await;

    // The fork view lists the detected package.
    until(
        &c,
        "document.querySelector('#sandboxes tr[data-name=devbox] button')",
        "the sandbox list",
    )
    .await;
    click(&c, "#sandboxes tr[data-name=devbox] button").await;
    let report = until(&c, "document.querySelector('#fork-report').textContent.includes('left-pad') && document.querySelector('#fork-report').textContent", "the fork report").await;
    assert!(report.contains("+ left-pad 1.3.0"), "{report}");

    // Readable at 375 px: nothing wider than the window.
    c.set_window_size(375, 800).await.unwrap();
    c.goto(&format!("{}/", srv.url)).await.unwrap();
    until(
        &c,
        "document.querySelector('#images tbody')",
        "the page at 375 px",
    )
    .await;
    let wide = c
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        wide,
        serde_json::Value::Bool(true),
        "the page is wider than 375 px"
    );
    c.close().await.unwrap();
    boxwright(&["--store", &s, "rm", "-f", "devbox"]).ok();
}
