//! Statements kept prepared that diesel would prepare afresh at every run.
//!
//! diesel keeps a prepared statement only when it can tell that its SQL never
//! changes; it never keeps an `UPDATE` (a changeset may leave columns out),
//! and through a connection that serves both engines no `INSERT` either (any
//! value might be `DEFAULT`).
//! For the statements a grant runs at every request that costs a parse and a
//! plan each time (SQLite's parser, PostgreSQL's unnamed statements). A
//! [`Kept`] statement is written as SQL text, bind values and nested diesel
//! fragments; diesel keeps it prepared, keyed by its SQL text and bind types,
//! so a statement whose text differs is never mistaken for another. A nested
//! fragment that diesel would not keep (an `IN` list) makes the whole
//! statement not kept, as before.

use super::MultiBackend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::RunQueryDsl;

/// A fragment every engine can write: diesel's expressions are, and so is
/// a [`Kept`] statement. A statement run on the engine's own connection (see
/// [`crate::db::on_engine`]) writes its text once, to find it prepared.
pub trait Fragment:
    QueryFragment<MultiBackend> + QueryFragment<Sqlite> + QueryFragment<Pg>
{
}

impl<T> Fragment for T where
    T: QueryFragment<MultiBackend> + QueryFragment<Sqlite> + QueryFragment<Pg> + ?Sized
{
}

/// One piece of a [`Kept`] statement.
pub enum Piece<'a> {
    /// SQL text, written as it is.
    Sql(&'static str),
    /// A text bind value.
    Text(&'a str),
    /// A text bind value that may be NULL.
    OptText(Option<&'a str>),
    /// An integer bind value.
    Int(i64),
    /// A diesel fragment (a condition another area builds, say).
    Fragment(&'a dyn Fragment),
}

/// A statement kept prepared across runs; see the module.
pub struct Kept<'a>(pub &'a [Piece<'a>]);

/// [`Kept`] and [`Returning`] written for each engine and for the
/// multi-connection.
macro_rules! written_for {
    ($($db:ty),*) => {$(
        impl QueryFragment<$db> for Kept<'_> {
            fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, $db>) -> QueryResult<()> {
                for piece in self.0 {
                    match piece {
                        Piece::Sql(sql) => pass.push_sql(sql),
                        Piece::Text(value) => pass.push_bind_param::<Text, _>(value)?,
                        Piece::OptText(value) => {
                            pass.push_bind_param::<Nullable<Text>, _>(value)?
                        }
                        Piece::Int(value) => pass.push_bind_param::<BigInt, _>(value)?,
                        Piece::Fragment(fragment) => {
                            <dyn Fragment as QueryFragment<$db>>::walk_ast(*fragment, pass.reborrow())?
                        }
                    }
                }
                Ok(())
            }
        }

        impl<ST> QueryFragment<$db> for Returning<'_, ST> {
            fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, $db>) -> QueryResult<()> {
                QueryFragment::<$db>::walk_ast(&self.0, pass)
            }
        }
    )*};
}

written_for!(MultiBackend, Sqlite, Pg);

impl QueryId for Kept<'_> {
    type QueryId = ();
    // No static id: the cache key is the SQL text with its bind types.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> RunQueryDsl<Conn> for Kept<'_> {}

/// `UPDATE table SET column = value WHERE condition`, kept prepared; how
/// many rows it changed. `condition` is diesel's (its columns qualified by
/// the table, as diesel writes them).
pub fn update(
    conn: &mut super::DbConn,
    table: &'static str,
    column: &'static str,
    value: i64,
    condition: &dyn Fragment,
) -> QueryResult<usize> {
    Update {
        table,
        column,
        value,
        condition,
    }
    .run(conn)
}

/// An [`update`] to run, or to nest in a [`Chain`].
#[derive(Clone, Copy)]
pub struct Update<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub value: i64,
    pub condition: &'a dyn Fragment,
}

impl<'a> Update<'a> {
    /// Runs it; how many rows it changed.
    pub fn run(self, conn: &mut super::DbConn) -> QueryResult<usize> {
        let pieces = self.pieces();
        crate::db::on_engine!(conn, |c| Kept(&pieces).execute(c))
    }

    /// `UPDATE table SET column = value WHERE (condition)`.
    fn pieces(self) -> [Piece<'a>; 9] {
        [
            Piece::Sql("UPDATE "),
            Piece::Sql(self.table),
            Piece::Sql(" SET "),
            Piece::Sql(self.column),
            Piece::Sql(" = "),
            Piece::Int(self.value),
            Piece::Sql(" WHERE ("),
            Piece::Fragment(self.condition),
            Piece::Sql(")"),
        ]
    }
}

/// `INSERT INTO table (columns) VALUES (values)`, kept prepared.
pub fn insert(
    conn: &mut super::DbConn,
    table: &'static str,
    row: &[(&'static str, Piece<'_>)],
) -> QueryResult<usize> {
    let mut pieces = Vec::with_capacity(4 * row.len() + 4);
    push_insert(&mut pieces, table, row, None);
    crate::db::on_engine!(conn, |c| Kept(&pieces).execute(c))
}

/// Appends [`insert`]'s statement to `pieces`; with `after`, the row is
/// inserted only when that part of a [`Chain`] matched a row (`INSERT …
/// SELECT values WHERE EXISTS (SELECT 1 FROM after)`).
fn push_insert<'a>(
    pieces: &mut Vec<Piece<'a>>,
    table: &'static str,
    row: &[(&'static str, Piece<'a>)],
    after: Option<&'static str>,
) {
    pieces.extend([
        Piece::Sql("INSERT INTO "),
        Piece::Sql(table),
        Piece::Sql(" ("),
    ]);
    for (i, (column, _)) in row.iter().enumerate() {
        if i > 0 {
            pieces.push(Piece::Sql(", "));
        }
        pieces.push(Piece::Sql(column));
    }
    pieces.push(Piece::Sql(match after {
        None => ") VALUES (",
        Some(_) => ") SELECT ",
    }));
    for (i, (_, value)) in row.iter().enumerate() {
        if i > 0 {
            pieces.push(Piece::Sql(", "));
        }
        pieces.push(value.reborrow());
    }
    match after {
        None => pieces.push(Piece::Sql(")")),
        Some(part) => pieces.extend(matched(" WHERE ", part)),
    }
}

/// `{lead}EXISTS (SELECT 1 FROM part)`: the part of a [`Chain`] matched a row.
fn matched(lead: &'static str, part: &'static str) -> [Piece<'static>; 4] {
    [
        Piece::Sql(lead),
        Piece::Sql("EXISTS (SELECT 1 FROM "),
        Piece::Sql(part),
        Piece::Sql(")"),
    ]
}

/// Several writes as one statement on PostgreSQL (a data-modifying `WITH`,
/// atomic as any statement, one round trip, kept prepared): named parts in
/// order, each one that follows another running only if that one matched a
/// row; [`Chain::counts`] answers how many rows chosen parts matched.
/// SQLite has no data-modifying `WITH`.
pub struct Chain<'a> {
    pieces: Vec<Piece<'a>>,
}

impl<'a> Chain<'a> {
    pub fn new() -> Self {
        Chain {
            pieces: Vec::with_capacity(96),
        }
    }

    /// `name AS (part)`: a statement with `RETURNING`, or a `SELECT`.
    pub fn part(&mut self, name: &'static str, part: impl IntoIterator<Item = Piece<'a>>) {
        self.open(name);
        self.pieces.extend(part);
        self.pieces.push(Piece::Sql(")"));
    }

    /// `name AS (UPDATE … RETURNING 1)`, only if the part `after` matched.
    pub fn update(&mut self, name: &'static str, update: Update<'a>, after: Option<&'static str>) {
        self.open(name);
        self.pieces.extend(update.pieces());
        if let Some(part) = after {
            self.pieces.extend(matched(" AND ", part));
        }
        self.pieces.push(Piece::Sql(" RETURNING 1)"));
    }

    /// `name AS (INSERT …)` of `row` into `table`, only if the part `after` matched.
    pub fn insert(
        &mut self,
        name: &'static str,
        table: &'static str,
        row: &[(&'static str, Piece<'a>)],
        after: &'static str,
    ) {
        self.open(name);
        push_insert(&mut self.pieces, table, row, Some(after));
        self.pieces.push(Piece::Sql(")"));
    }

    fn open(&mut self, name: &'static str) {
        let lead = if self.pieces.is_empty() {
            "WITH "
        } else {
            ", "
        };
        self.pieces
            .extend([Piece::Sql(lead), Piece::Sql(name), Piece::Sql(" AS (")]);
    }

    /// Runs the statement (on PostgreSQL): how many rows each of `parts`
    /// matched.
    pub fn counts<const N: usize>(
        mut self,
        parts: [&'static str; N],
        conn: &mut super::DbConn,
    ) -> QueryResult<[i64; N]> {
        for (i, part) in parts.iter().enumerate() {
            self.pieces.extend([
                Piece::Sql(if i == 0 { " SELECT ARRAY[" } else { ", " }),
                Piece::Sql("(SELECT count(*) FROM "),
                Piece::Sql(part),
                Piece::Sql(")"),
            ]);
        }
        self.pieces.push(Piece::Sql("]"));
        let statement = Returning::<diesel::sql_types::Array<BigInt>>::new(&self.pieces);
        let super::DbConn::Postgresql(pg) = conn else {
            return Err(diesel::result::Error::QueryBuilderError(
                "a chain of writes in one statement needs PostgreSQL".into(),
            ));
        };
        let counts: Vec<i64> = statement.get_result(pg)?;
        counts.try_into().map_err(|_| {
            diesel::result::Error::DeserializationError("a count for each part".into())
        })
    }
}

impl Default for Chain<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// A [`Kept`] statement that answers one row of the SQL types `ST` (read
/// with diesel's `get_result`).
pub struct Returning<'a, ST>(pub Kept<'a>, std::marker::PhantomData<ST>);

impl<'a, ST> Returning<'a, ST> {
    pub fn new(pieces: &'a [Piece<'a>]) -> Self {
        Returning(Kept(pieces), std::marker::PhantomData)
    }
}

impl<ST> QueryId for Returning<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: diesel::sql_types::SqlType> diesel::query_builder::Query for Returning<'_, ST> {
    type SqlType = ST;
}

impl<Conn, ST> RunQueryDsl<Conn> for Returning<'_, ST> {}

impl<'a> Piece<'a> {
    fn reborrow(&self) -> Piece<'a> {
        match *self {
            Piece::Sql(s) => Piece::Sql(s),
            Piece::Text(t) => Piece::Text(t),
            Piece::OptText(t) => Piece::OptText(t),
            Piece::Int(n) => Piece::Int(n),
            Piece::Fragment(f) => Piece::Fragment(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::{Connection, InstrumentationEvent};
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_statement_of_every_kind_of_piece_is_prepared_once() {
        let db = crate::db::testkit::TestDb::new();
        let mut conn = db.conn();
        use diesel::connection::SimpleConnection;
        conn.batch_execute("CREATE TABLE kept_probe (a TEXT, b TEXT, c BIGINT)")
            .unwrap();
        let (b, c) = ("b".to_string(), 3i64);
        let condition = Kept(&[Piece::Sql("c = "), Piece::Int(c)]);
        let run = |conn: &mut super::super::DbConn, a: &str, b: Option<&str>| {
            let row = [
                ("a", Piece::Text(a)),
                ("b", Piece::OptText(b)),
                ("c", Piece::Int(c)),
            ];
            let inserted = cached_by(conn, |conn| insert(conn, "kept_probe", &row));
            let updated = cached_by(conn, |conn| update(conn, "kept_probe", "c", 4, &condition));
            (inserted, updated)
        };
        assert_eq!(run(&mut conn, "x", Some(&b)), (1, 1), "prepared and kept");
        assert_eq!(
            run(&mut conn, "y", None),
            (0, 0),
            "kept: not prepared again"
        );
        // The rows are what was bound.
        let n: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM kept_probe WHERE c = 4 AND (b = 'b' OR b IS NULL))",
        ))
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(n, 2);
    }

    /// How many statements `f` prepared and kept.
    fn cached_by(
        conn: &mut super::super::DbConn,
        f: impl FnOnce(&mut super::super::DbConn) -> QueryResult<usize>,
    ) -> usize {
        let seen = Arc::new(Mutex::new(0));
        let log = seen.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                *log.lock().unwrap() += 1;
            }
        });
        f(conn).expect("runs");
        conn.set_instrumentation(|_: InstrumentationEvent<'_>| {});
        let n = *seen.lock().unwrap();
        n
    }
}
