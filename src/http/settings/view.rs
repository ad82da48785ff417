//! What the settings pages share in their views: the frame around each
//! workspace page, and the words of times.

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
