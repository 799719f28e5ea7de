//! The login form works with the keyboard alone: Tab reaches the token field (after the skip link),
//! the focus is visible, typing and Enter log in.

use fantoccini::key::Key;

use crate::browser::*;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_login_form_works_with_the_keyboard_alone() {
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app(&[]).await;
    let base = app.base();
    browser
        .run(Screen::Desktop, move |c, camera| async move {
            open(&c, &format!("{base}/login")).await;
            // Tab through the page, noting where the focus lands, until it reaches the token field.
            let mut order = Vec::new();
            for _ in 0..8 {
                press(&c, Key::Tab).await;
                let focused = js(&c, "var e = document.activeElement; return e.id || e.className || e.tagName;").await;
                order.push(focused.as_str().unwrap_or_default().to_string());
                if order.last().is_some_and(|f| f == "token") {
                    break;
                }
            }
            assert_eq!(
                order.first().map(String::as_str),
                Some("skip"),
                "the skip link comes first: {order:?}"
            );
            assert_eq!(
                order.last().map(String::as_str),
                Some("token"),
                "Tab reaches the token field: {order:?}"
            );
            assert!(order.len() <= 4, "within a few presses: {order:?}");
            let outline = js(
                &c,
                "var s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth;",
            )
            .await;
            let outline = outline.as_str().unwrap_or_default().to_string();
            assert!(
                !outline.starts_with("none") && !outline.ends_with(" 0px"),
                "the focused field shows it: {outline}"
            );
            camera.shoot(&c, "00-login-keyboard").await;

            // A wrong token and Enter: the page says so and keeps the focus usable.
            c.active_element()
                .await
                .expect("the focused field")
                .send_keys("wrong-token")
                .await
                .expect("typed");
            press(&c, Key::Enter).await;
            let error = text_of(&c, "#login-error").await;
            assert!(error.contains("令牌无效"), "{error}");

            // The right token: Tab to the field again, type, Enter.
            let mut reached = false;
            for _ in 0..8 {
                press(&c, Key::Tab).await;
                if js(&c, "return document.activeElement.id;").await == "token" {
                    reached = true;
                    break;
                }
            }
            assert!(reached, "Tab reaches the token field on the page with the error");
            c.active_element()
                .await
                .expect("the focused field")
                .send_keys(HEAD)
                .await
                .expect("typed");
            press(&c, Key::Enter).await;
            wait_for(&c, "section[aria-labelledby='map-h']").await;
            assert_eq!(path(&c).await, "/");
            assert!(text_of(&c, ".who").await.contains(HEAD_NAME), "logged in as the head");
            check_basics(&c, "/ after a keyboard login").await;
        })
        .await;
    app.stop().await;
}
