//! What the settings pages share in their views: the frame around each
//! workspace page, times in words, and the usage charts.

use super::*;

/// What every workspace settings page shows around its own part: the tabs,
/// the workspace switcher and who is signed in (`settings_nav.html`), and
/// whether the person may manage the workspace.
///
/// A page's template holds one in its `frame` field and derefs to it
/// (`framed!`), so the templates read these fields by their own names.
pub(super) struct Frame<'a> {
    pub(super) tab: &'a str,
    pub(super) workspaces: &'a [Workspace],
    pub(super) current: &'a Workspace,
    pub(super) user_email: &'a str,
    pub(super) csrf_token: &'a str,
    pub(super) can_manage: bool,
    /// The identity provider account linked to the person, in words
    /// (`settings_identity.html`).
    pub(super) identity: Option<LinkedIdentity>,
}

/// A linked identity as the frame shows it: the provider's host and the
/// person's `sub` there.
#[derive(Clone)]
pub(super) struct LinkedIdentity {
    pub(super) host: String,
    pub(super) subject: String,
}

impl LinkedIdentity {
    /// The first of a person's identities (keygate has one provider).
    pub(super) fn of(identities: &[crate::accounts::identities::IdentityRef]) -> Option<Self> {
        identities.first().map(|i| LinkedIdentity {
            host: url::Url::parse(&i.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| i.issuer.clone()),
            subject: i.subject.clone(),
        })
    }

    /// The identity of one person.
    pub(super) fn load(conn: &mut DbConn, user_id: &str) -> Result<Option<Self>, Error> {
        let mut all = crate::accounts::identities::of_users(conn, &[user_id.to_string()])?;
        Ok(Self::of(&all.remove(user_id).unwrap_or_default()))
    }
}

impl<'a> Frame<'a> {
    /// The frame of the page `tab` for `ctx`.
    pub(super) fn of(ctx: &'a Context, tab: &'a str) -> Self {
        Frame {
            tab,
            workspaces: &ctx.workspaces,
            current: &ctx.current,
            user_email: &ctx.user.email,
            csrf_token: &ctx.session.csrf_token,
            can_manage: ctx.role.can_manage(),
            identity: ctx.identity.clone(),
        }
    }
}

/// Lets a page template (a struct with a `frame: Frame<'a>` field) read the
/// frame's fields as its own.
macro_rules! framed {
    ($($template:ident),+ $(,)?) => {$(
        impl<'a> std::ops::Deref for $template<'a> {
            type Target = $crate::http::settings::view::Frame<'a>;
            fn deref(&self) -> &Self::Target {
                &self.frame
            }
        }
    )+};
}
pub(super) use framed;

/// A time to the minute in UTC, or `none` without one.
pub(super) fn day(t: Option<i64>, none: &str) -> String {
    match t.and_then(|t| chrono::DateTime::from_timestamp(t, 0)) {
        Some(d) => d.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => none.to_string(),
    }
}

/// The last day a key works (its expiry is 24:00 UTC that day).
pub(super) fn last_day(expires_at: Option<i64>) -> String {
    match expires_at.and_then(|t| chrono::DateTime::from_timestamp(t - 1, 0)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => "never".to_string(),
    }
}

const CHART_DAYS: i64 = 30;

/// The 30-day usage chart of one subject from rows loaded for many.
pub(super) fn chart(usage: &[(String, i64, i64)], id: &str) -> String {
    let points: Vec<(i64, i64)> = usage
        .iter()
        .filter(|u| u.0 == id)
        .map(|u| (u.1, u.2))
        .collect();
    crate::credentials::usage::sparkline(
        &points,
        crate::credentials::usage::day_of(db::now()),
        CHART_DAYS,
    )
}

/// The daily usage of `ids` (of one `kind`) over the chart's days.
pub(super) fn load_usage(
    conn: &mut DbConn,
    kind: &str,
    ids: Vec<String>,
) -> Result<Vec<(String, i64, i64)>, Error> {
    let since = crate::credentials::usage::day_of(db::now()) - CHART_DAYS + 1;
    crate::credentials::usage::series_many(conn, kind, &ids, since)
}

/// A moment shown in words relative to now ("3 days ago"), with the exact
/// time on hover and for machines (`<time datetime title>`).
#[derive(Clone, Debug, Default)]
pub(super) struct When {
    /// Relative words, or the placeholder when there is no time.
    pub(super) words: String,
    /// The exact time to the minute in UTC; empty without a time.
    pub(super) exact: String,
    /// RFC 3339; empty without a time.
    pub(super) iso: String,
}

impl When {
    /// `t` as seen at `now`; `none` is shown when there is no time.
    pub(super) fn of(t: Option<i64>, now: i64, none: &str) -> When {
        match t {
            Some(t) => When {
                words: ago(t, now),
                exact: day(Some(t), ""),
                iso: db::rfc3339(t),
            },
            None => When {
                words: none.to_string(),
                ..When::default()
            },
        }
    }

    /// The `<time>` element (or the placeholder in plain text). Safe to
    /// insert unescaped: every part is made of digits and fixed words.
    pub(super) fn html(&self) -> String {
        if self.iso.is_empty() {
            return askama_escape(&self.words);
        }
        format!(
            "<time datetime=\"{}\" title=\"{}\">{}</time>",
            self.iso, self.exact, self.words
        )
    }
}

fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `t` as a `<time>` element in words relative to now, the exact time on
/// hover (see [`When::html`]); `none` without a time.
pub(super) fn when_html(t: Option<i64>, none: &str) -> String {
    When::of(t, db::now(), none).html()
}

/// `t` relative to `now` in words: "just now", "5 minutes ago", "in 3 days".
pub(super) fn ago(t: i64, now: i64) -> String {
    let d = now - t;
    let (n, unit) = span(d.unsigned_abs());
    match (n, d >= 0) {
        (0, _) => "just now".to_string(),
        (n, true) => format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" }),
        (n, false) => format!("in {n} {unit}{}", if n == 1 { "" } else { "s" }),
    }
}

/// A span of seconds as a count of its largest whole unit (0 under a minute).
fn span(secs: u64) -> (u64, &'static str) {
    const UNITS: [(u64, &str); 6] = [
        (365 * 86_400, "year"),
        (30 * 86_400, "month"),
        (7 * 86_400, "week"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
    ];
    UNITS
        .iter()
        .find(|(size, _)| secs >= *size)
        .map_or((0, "minute"), |(size, unit)| (secs / size, *unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_words() {
        let now = 1_800_000_000;
        assert_eq!(ago(now - 10, now), "just now");
        assert_eq!(ago(now - 60, now), "1 minute ago");
        assert_eq!(ago(now - 7_200, now), "2 hours ago");
        assert_eq!(ago(now - 3 * 86_400, now), "3 days ago");
        assert_eq!(ago(now - 40 * 86_400, now), "1 month ago");
        assert_eq!(ago(now + 5 * 86_400, now), "in 5 days");
        let w = When::of(Some(now - 90), now, "never");
        assert_eq!(w.words, "1 minute ago");
        assert!(w.html().starts_with("<time datetime=\""), "{}", w.html());
        assert_eq!(When::of(None, now, "never").html(), "never");
    }
}
