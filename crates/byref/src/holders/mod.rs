//! Who holds references, and for how long: holder records and the lifetimes built on them.
//!
//! Every reference names its holder ([`RefId::holder`]). A holder is described by a small
//! *record* stored as an object in the same store (JSON in a raw frame), which holds itself
//! by [`RefId::record_of`]: so any process that can list the store can say who holds what,
//! and whether that holder still lives, with nothing kept outside the store.
//!
//! - `process`: references for as long as a process (or a scope in it: a `with` block, a
//!   Parsl run) wants them; released when it closes, and reaped by `byref gc --dead` once
//!   the process is gone (killed with -9, or on a machine that rebooted).
//! - `lease`: until a time, which can be extended; reaped once past it.
//!
//! Plain puts are held by nobody in particular ([`HolderTag::NOBODY`]): they stay until
//! released (`evict`) or collected by age, and cost no record.

pub mod adopt;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use byref_core::host::{process_start, this_host};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{
    Encoding, Error, HolderTag, Key, Layout, Payload, PutOptions, RefId, Result, Store, StoreExt,
    unix_now,
};

/// What kind of holder a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HolderKind {
    /// Released when its process closes it or is gone.
    Process,
    /// Released when its time is up.
    Lease,
}

impl HolderKind {
    /// Its name, as records and `byref ls` spell it.
    pub fn name(self) -> &'static str {
        match self {
            HolderKind::Process => "process",
            HolderKind::Lease => "lease",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "process" => Ok(HolderKind::Process),
            "lease" => Ok(HolderKind::Lease),
            other => Err(Error::Config(format!(
                "a holder is a process or a lease, not {other:?}"
            ))),
        }
    }
}

/// Who a holder is: the process that made it, where, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderRecord {
    /// The tag its references carry, 16 hex digits.
    pub tag: String,
    /// Its kind.
    pub kind: HolderKind,
    /// What it is for, as its maker says (`parsl run`, `proxy_args(simulate)`, ...).
    pub label: String,
    /// The host's name (in its UTS namespace).
    pub host: String,
    /// The host's kernel boot id.
    pub boot: String,
    /// The pid namespace its pid means something in.
    pub pid_namespace: String,
    /// The process.
    pub pid: u32,
    /// When the process started, in clock ticks since boot: with `pid`, one process.
    pub start: u64,
    /// The user id it ran as.
    pub uid: u32,
    /// When the record was made, seconds since the Unix epoch.
    pub created: u64,
    /// A lease's end, seconds since the Unix epoch.
    pub expires: Option<u64>,
}

/// Whether a holder still holds, as far as this process can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// It does.
    Alive,
    /// It is gone, and why: its references may be released.
    Gone(String),
    /// It cannot be checked from here (another host), and why: its references stay.
    Unknown(String),
}

impl HolderRecord {
    /// A record of a new holder in this process.
    pub fn here(tag: HolderTag, kind: HolderKind, label: &str, expires: Option<u64>) -> Self {
        let host = this_host();
        let pid = std::process::id();
        HolderRecord {
            tag: tag.to_string(),
            kind,
            label: label.to_owned(),
            host: host.map(|h| h.hostname.clone()).unwrap_or_default(),
            boot: host.map(|h| h.boot_id.clone()).unwrap_or_default(),
            pid_namespace: host.map(|h| h.pid_namespace.clone()).unwrap_or_default(),
            pid,
            start: process_start(pid).unwrap_or_default(),
            uid: rustix::process::getuid().as_raw(),
            created: unix_now(),
            expires,
        }
    }

    /// Its tag.
    pub fn holder_tag(&self) -> Option<HolderTag> {
        self.tag.parse().ok()
    }

    /// The object that stores it: a raw frame of its JSON.
    pub fn payload(&self) -> Payload {
        let json = serde_json::to_vec(self).expect("a record serializes");
        Payload::frame(Encoding::Raw, Bytes::new(), vec![Bytes::from(json)])
    }

    /// Reads a record back from its object; `None` if it is not one.
    pub fn parse(object: &[u8], store: &str, key: &Key) -> Option<Self> {
        let layout = Layout::parse(object, store, key).ok()?;
        if layout.encoding != Encoding::Raw || layout.buffers.len() != 1 {
            return None;
        }
        serde_json::from_slice(&object[layout.buffers[0].clone()]).ok()
    }

    /// Whether its holder still holds, judged on this host at `now`.
    pub fn liveness(&self, now: u64) -> Liveness {
        if let Some(expires) = self.expires {
            return if expires <= now {
                Liveness::Gone(format!("lease ended {}s ago", now - expires))
            } else {
                Liveness::Alive
            };
        }
        let Some(here) = this_host() else {
            return Liveness::Unknown("this host has no /proc".into());
        };
        if self.host != here.hostname {
            return Liveness::Unknown(format!("on host {}", self.host));
        }
        if self.boot != here.boot_id {
            return Liveness::Gone(format!("{} has rebooted since", self.host));
        }
        if self.pid_namespace != here.pid_namespace {
            return Liveness::Unknown(format!("in pid namespace {}", self.pid_namespace));
        }
        match process_start(self.pid) {
            Some(start) if start == self.start => Liveness::Alive,
            Some(_) => Liveness::Gone(format!("process {} has exited", self.pid)),
            // No /proc entry to read: gone only if the kernel says no such process. With /proc
            // mounted `hidepid=2` (usual on login nodes), another user's live process has no
            // entry either, and signalling it is refused, not unknown.
            None => match rustix::process::Pid::from_raw(self.pid as i32)
                .map(rustix::process::test_kill_process)
            {
                Some(Err(rustix::io::Errno::SRCH)) => {
                    Liveness::Gone(format!("process {} has exited", self.pid))
                }
                _ => Liveness::Unknown(format!(
                    "process {} of user {} exists, but /proc hides it from this user",
                    self.pid, self.uid
                )),
            },
        }
    }
}

/// A holder: the references it made, released together when it closes.
///
/// It writes its record when opened; a scope that shares another holder's tag (a task within
/// a run) has none of its own, and is only a list of references to release.
#[derive(Debug)]
pub struct Holder {
    /// The store its references are in.
    store: Arc<dyn Store>,
    /// The tag its references carry.
    tag: HolderTag,
    /// Its record and the record's key, when it has one of its own: released last.
    record: Mutex<Option<(Key, HolderRecord)>>,
    /// The references it made and has not released, by key.
    held: Mutex<HashMap<Key, Vec<RefId>>>,
}

/// What closing a holder released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// References released.
    pub references: u64,
    /// Objects deleted with their last reference.
    pub objects: u64,
}

impl Holder {
    /// A new holder with a record of its own, written before any reference names it.
    pub async fn open(
        store: Arc<dyn Store>,
        kind: HolderKind,
        label: &str,
        lease: Option<Duration>,
    ) -> Result<Self> {
        let tag = HolderTag::random();
        let expires = lease.map(|d| unix_now() + d.as_secs().max(1));
        let record = HolderRecord::here(tag, kind, label, expires);
        let key = put_record(store.as_ref(), &record).await?;
        Ok(Holder {
            store,
            tag,
            record: Mutex::new(Some((key, record))),
            held: Mutex::default(),
        })
    }

    /// A scope of `tag`'s holder: its references carry that tag; no record of its own.
    pub fn scope(store: Arc<dyn Store>, tag: HolderTag) -> Self {
        Holder {
            store,
            tag,
            record: Mutex::default(),
            held: Mutex::default(),
        }
    }

    /// The tag its references carry.
    pub fn tag(&self) -> HolderTag {
        self.tag
    }

    /// Its record, if it has one.
    pub fn record(&self) -> Option<HolderRecord> {
        self.lock_record().as_ref().map(|(_, r)| r.clone())
    }

    /// The options of a put on its behalf.
    pub fn put_options(&self) -> PutOptions {
        PutOptions {
            reference: RefId::held_by(self.tag),
            ..PutOptions::new()
        }
    }

    /// Counts a reference a put made on its behalf, to release it on close.
    pub fn hold(&self, key: Key, reference: RefId) {
        self.lock_held().entry(key).or_default().push(reference);
    }

    /// Whether it holds `reference` to `key`.
    pub fn holds(&self, key: &Key, reference: &RefId) -> bool {
        self.lock_held()
            .get(key)
            .is_some_and(|refs| refs.contains(reference))
    }

    /// Releases one of its references to each of `keys` (a key twice, two; all it holds if
    /// `None`: its references to one key are alike, each counting once toward the object),
    /// and with `sweep`, every other reference in the store that carries its tag (made by
    /// other processes on its behalf: a worker's results); then, if `keys` is `None`, its
    /// record. References released already (an `evict=True` proxy resolved) are skipped.
    pub async fn release(&self, keys: Option<&[Key]>, sweep: bool) -> Result<Released> {
        let mut mine: Vec<(Key, RefId)> = {
            let mut held = self.lock_held();
            match keys {
                None => std::mem::take(&mut *held)
                    .into_iter()
                    .flat_map(|(k, refs)| refs.into_iter().map(move |r| (k, r)))
                    .collect(),
                Some(keys) => keys
                    .iter()
                    .filter_map(|key| {
                        let refs = held.get_mut(key)?;
                        let reference = refs.pop()?;
                        if refs.is_empty() {
                            held.remove(key);
                        }
                        Some((*key, reference))
                    })
                    .collect(),
            }
        };
        if sweep {
            let known: std::collections::HashSet<(Key, RefId)> = mine.iter().copied().collect();
            for listed in self.store.list().await? {
                for reference in listed.references {
                    if reference.holder() == self.tag
                        && !reference.is_record()
                        && !known.contains(&(listed.key, reference))
                    {
                        mine.push((listed.key, reference));
                    }
                }
            }
        }
        if keys.is_none() {
            adopt::stop_adopting(self);
        }
        let mut released = release_all(self.store.as_ref(), &mine).await?;
        if keys.is_none() {
            let record = self.lock_record().take();
            if let Some((key, _)) = record {
                let own = [(key, RefId::record_of(self.tag))];
                released.objects += release_all(self.store.as_ref(), &own).await?.objects;
            }
        }
        Ok(released)
    }

    /// Moves a lease's end to `lease` from now: a new record, then the old one released.
    pub async fn extend(&self, lease: Duration) -> Result<()> {
        let Some((old_key, mut record)) = self.lock_record().clone() else {
            return Err(Error::Config("this holder has no record to extend".into()));
        };
        if record.kind != HolderKind::Lease {
            return Err(Error::Config("only a lease can be extended".into()));
        }
        record.expires = Some(unix_now() + lease.as_secs().max(1));
        let key = put_record(self.store.as_ref(), &record).await?;
        *self.lock_record() = Some((key, record));
        if key != old_key {
            release_all(
                self.store.as_ref(),
                &[(old_key, RefId::record_of(self.tag))],
            )
            .await?;
        }
        Ok(())
    }

    fn lock_record(&self) -> std::sync::MutexGuard<'_, Option<(Key, HolderRecord)>> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<RefId>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Stores `record`, held by itself; its key.
pub(crate) async fn put_record(store: &dyn Store, record: &HolderRecord) -> Result<Key> {
    let tag = record
        .holder_tag()
        .ok_or_else(|| Error::Config(format!("holder tag {:?}", record.tag)))?;
    let options = PutOptions {
        reference: RefId::record_of(tag),
        ..PutOptions::new()
    };
    store.put_payload(&record.payload(), &options).await
}

/// Releases each of `references`; those released already are skipped.
pub async fn release_all(store: &dyn Store, references: &[(Key, RefId)]) -> Result<Released> {
    use futures::{StreamExt, TryStreamExt, stream};
    let outcomes: Vec<Option<bool>> = stream::iter(references.to_vec())
        .map(move |(key, reference)| async move {
            match crate::release(store, &key, Some(&reference)).await {
                Ok(deleted) => Ok(Some(deleted)),
                Err(Error::ReferenceGone { .. } | Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    Ok(Released {
        references: outcomes.iter().flatten().count() as u64,
        objects: outcomes.iter().flatten().filter(|d| **d).count() as u64,
    })
}
