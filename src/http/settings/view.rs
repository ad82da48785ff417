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
