//! Every node's copy of the registered resources, so that a gateway check or
//! an introspection by a resource reads no table. The whole set is read at
//! once (there are at most `MAX_RESOURCES`): again when a `resource` event
//! arrives (a resource created or deleted anywhere), when the revocation feed
//! had a gap, and at least every `max_age` (as cached credentials are).

use super::{Resource, ResourceRow};
use crate::db::schema::resources;
use crate::db::DbConn;
use crate::error::Result;
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The resources as one read found them.
#[derive(Default, Debug)]
pub struct Snapshot {
    by_key: HashMap<String, Arc<Resource>>,
    by_id: HashMap<String, Arc<Resource>>,
    by_client: HashMap<String, Arc<Resource>>,
}

impl Snapshot {
    fn of(all: Vec<Resource>) -> Snapshot {
        let mut s = Snapshot::default();
        for r in all.into_iter().map(Arc::new) {
            s.by_key
                .insert(super::identifier::key(&r.identifier).to_string(), r.clone());
            s.by_id.insert(r.id.clone(), r.clone());
            s.by_client.insert(r.client_id.clone(), r);
        }
        s
    }

    /// The resource of `identifier` (one trailing slash ignored).
    pub fn by_identifier(&self, identifier: &str) -> Option<&Arc<Resource>> {
        self.by_key.get(super::identifier::key(identifier))
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<Resource>> {
        self.by_id.get(id)
    }

    pub fn by_client_id(&self, client_id: &str) -> Option<&Arc<Resource>> {
        self.by_client.get(client_id)
    }
}

struct Held {
    snapshot: Arc<Snapshot>,
    read_at: Instant,
}

pub struct Registry {
    held: RwLock<Option<Held>>,
    /// Bumped by every `forget`: a read that began before it is not kept.
    generation: AtomicU64,
    max_age: Duration,
}

impl Registry {
    pub fn new(max_age: Duration) -> Registry {
        Registry {
            held: RwLock::new(None),
            generation: AtomicU64::new(0),
            max_age,
        }
    }

    /// The resources, from memory while they are young enough; `None`: read
    /// them ([`Registry::load`]).
    pub fn cached(&self) -> Option<Arc<Snapshot>> {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        held.as_ref()
            .filter(|h| h.read_at.elapsed() < self.max_age)
            .map(|h| h.snapshot.clone())
    }

    /// Reads every resource and keeps them, unless a `forget` came meanwhile
    /// (the answer is still given).
    pub fn load(&self, conn: &mut DbConn) -> Result<Arc<Snapshot>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let rows: Vec<ResourceRow> = resources::table
            .select(ResourceRow::as_select())
            .limit(super::MAX_RESOURCES)
            .load(conn)?;
        let all = rows
            .into_iter()
            .map(Resource::try_from)
            .collect::<Result<Vec<_>>>()?;
        let snapshot = Arc::new(Snapshot::of(all));
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *held = Some(Held {
                snapshot: snapshot.clone(),
                read_at: Instant::now(),
            });
        }
        Ok(snapshot)
    }

    /// From memory, or read now.
    pub fn current(&self, conn: &mut DbConn) -> Result<Arc<Snapshot>> {
        match self.cached() {
            Some(s) => Ok(s),
            None => self.load(conn),
        }
    }

    /// A resource was created or deleted somewhere (or the feed had a gap):
    /// the next lookup reads them all again.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.held.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
