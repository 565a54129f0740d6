//! What a store holds and who holds it (`byref ls`, `byref du`), and the collection of what
//! no live holder holds (`byref gc`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};

use crate::holders::{HolderRecord, Liveness, Released, release_all};
use crate::{HolderTag, Key, Listed, RefId, Result, Store, StoreExt, unix_now};

/// References made by a holder with no record are left this long before `gc --dead` takes
/// them: a record is written before its holder's first reference, but a listing may see
/// the reference and not yet the record.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(60);
/// A holder record is a few hundred bytes: an object claiming to be one and larger is not
/// fetched (anyone who can write to a store can mark an object as a record).
const MAX_RECORD: u64 = 64 << 10;
/// Records and frame headers fetched at once while taking an inventory.
const IN_FLIGHT: usize = 64;

/// A store's objects and the holders their references name.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Every object, holder records included.
    pub objects: Vec<Listed>,
    /// The holder each tag names, from its most alive record, then its latest lease end (see
    /// [`take`]: records can be forged, so none can make a holder look gone sooner).
    pub holders: HashMap<HolderTag, HolderRecord>,
    /// The keys of holder records, with their tag.
    pub records: HashMap<Key, HolderTag>,
    /// What each object is, when asked for: its frame's encoding (`bytes`, `pickle`,
    /// `cloudpickle`), or `holder` for a record.
    pub kinds: HashMap<Key, &'static str>,
}

/// Lists `store` and reads its holder records (and, with `kinds`, each object's frame
/// header).
pub async fn take(store: &dyn Store, kinds: bool) -> Result<Inventory> {
    let objects = store.list().await?;
    let records: HashMap<Key, HolderTag> = objects
        .iter()
        .filter(|l| l.len <= MAX_RECORD)
        .filter_map(|l| {
            let own = l.references.iter().find(|r| r.is_record())?;
            Some((l.key, own.holder()))
        })
        .collect();
    let record_keys: Vec<Key> = records.keys().copied().collect();
    let read: Vec<Option<HolderRecord>> = stream::iter(record_keys)
        .map(move |key| async move {
            match store.get(&key).await {
                Ok(object) => Ok(HolderRecord::parse(object.as_slice(), store.url(), &key)),
                Err(crate::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    // Anyone who may put objects can put a record naming someone else's tag. So a holder is
    // judged by its *most alive* record (then the latest lease end): a forged record can make
    // a holder look alive longer, never gone sooner, and a lease extended (two records for a
    // moment) counts by its newest end.
    let now = unix_now();
    let mut holders: HashMap<HolderTag, (u8, HolderRecord)> = HashMap::new();
    for record in read.into_iter().flatten() {
        let Some(tag) = record.holder_tag() else {
            continue;
        };
        let rank = match record.liveness(now) {
            Liveness::Alive => 2,
            Liveness::Unknown(_) => 1,
            Liveness::Gone(_) => 0,
        };
        let better = holders
            .get(&tag)
            .is_none_or(|(r, old)| (rank, record.expires) > (*r, old.expires));
        if better {
            holders.insert(tag, (rank, record));
        }
    }
    let holders = holders.into_iter().map(|(tag, (_, r))| (tag, r)).collect();
    let mut kind_of = HashMap::new();
    if kinds {
        // The backend's listing gave most objects' first bytes; the rest are read.
        let mut data: Vec<(Key, u64)> = Vec::new();
        for l in objects.iter().filter(|l| !records.contains_key(&l.key)) {
            match &l.head {
                Some(head) => {
                    kind_of.insert(l.key, frame_kind(head));
                }
                None => data.push((l.key, l.len)),
            }
        }
        let headers: Vec<(Key, &'static str)> = stream::iter(data)
            .map(move |(key, len)| async move {
                let kind = match store.get_range(&key, 0..8.min(len)).await {
                    Ok(head) => frame_kind(&head),
                    Err(_) => "gone",
                };
                (key, kind)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        kind_of.extend(headers);
        kind_of.extend(records.keys().map(|k| (*k, "holder")));
    }
    Ok(Inventory {
        objects,
        holders,
        records,
        kinds: kind_of,
    })
}

/// What a frame's first 8 bytes say it holds.
fn frame_kind(head: &[u8]) -> &'static str {
    crate::Encoding::of_head(head).map_or("unknown", crate::Encoding::name)
}

/// What `gc` releases.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// References of holders that are gone: processes that exited or were killed on this
    /// host, hosts rebooted since, leases past their end, holders with no record left.
    pub dead: bool,
    /// References made longer ago than this, whoever holds them.
    pub older_than: Option<Duration>,
    /// Every reference of this holder, and its record.
    pub holder: Option<HolderTag>,
}

/// One reference `gc` releases, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The object.
    pub key: Key,
    /// The reference.
    pub reference: RefId,
    /// Why it goes.
    pub why: String,
}

/// What `gc` would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The references to release.
    pub releases: Vec<Release>,
    /// Objects that would go with their last reference.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// References kept because their holder cannot be checked from here, by why.
    pub unknown: HashMap<String, u64>,
}

impl Inventory {
    /// Why `reference` (to a data object) may go under `options`, at `now`; `Err` with why
    /// not when its holder cannot be checked from here.
    fn verdict(
        &self,
        reference: &RefId,
        options: &GcOptions,
        now: u64,
    ) -> std::result::Result<Option<String>, String> {
        let tag = reference.holder();
        if options.holder == Some(tag) {
            return Ok(Some(format!("held by {tag}")));
        }
        let created = reference.created().unwrap_or(0);
        if let Some(age) = options.older_than
            && created + age.as_secs() < now
        {
            return Ok(Some(format!("made {}s ago", now.saturating_sub(created))));
        }
        if !options.dead || tag == HolderTag::NOBODY {
            return Ok(None);
        }
        match self.holders.get(&tag) {
            Some(record) => match record.liveness(now) {
                Liveness::Alive => Ok(None),
                Liveness::Gone(why) => Ok(Some(why)),
                Liveness::Unknown(why) => Err(why),
            },
            None if created + ORPHAN_GRACE.as_secs() < now => {
                Ok(Some(format!("holder {tag} has closed")))
            }
            None => Ok(None),
        }
    }

    /// What `gc` would release under `options`: references first, then the records of holders
    /// that are gone and hold nothing more.
    pub fn plan(&self, options: &GcOptions) -> Plan {
        let now = unix_now();
        let mut plan = Plan::default();
        // Tags that still hold a data reference after the plan.
        let mut holding: HashSet<HolderTag> = HashSet::new();
        for listed in self
            .objects
            .iter()
            .filter(|l| !self.records.contains_key(&l.key))
        {
            let mut left = listed.references.len();
            for reference in &listed.references {
                match self.verdict(reference, options, now) {
                    Ok(Some(why)) => {
                        plan.releases.push(Release {
                            key: listed.key,
                            reference: *reference,
                            why,
                        });
                        left -= 1;
                    }
                    Ok(None) => {
                        holding.insert(reference.holder());
                    }
                    Err(why) => {
                        *plan.unknown.entry(why).or_default() += 1;
                        holding.insert(reference.holder());
                    }
                }
            }
            if left == 0 {
                plan.objects += 1;
                plan.bytes += listed.len;
            }
        }
        for listed in self
            .objects
            .iter()
            .filter(|l| self.records.contains_key(&l.key))
        {
            for reference in listed.references.iter().filter(|r| r.is_record()) {
                let tag = reference.holder();
                let why = match self.holders.get(&tag) {
                    _ if options.holder == Some(tag) => Some(format!("held by {tag}")),
                    _ if !options.dead || holding.contains(&tag) => None,
                    // A lease extended since, or a record posing as its holder's.
                    Some(judged) if judged.payload().key() != listed.key => {
                        Some("another record of its holder outlives it".to_owned())
                    }
                    Some(record) => match record.liveness(now) {
                        Liveness::Gone(why) => Some(why),
                        _ => None,
                    },
                    None => None,
                };
                if let Some(why) = why {
                    plan.releases.push(Release {
                        key: listed.key,
                        reference: *reference,
                        why: format!("holder record: {why}"),
                    });
                    if listed.references.len() == 1 {
                        plan.objects += 1;
                        plan.bytes += listed.len;
                    }
                }
            }
        }
        plan
    }
}

/// Carries out `plan`: releases its references (those released meanwhile are skipped).
pub async fn apply(store: &dyn Store, plan: &Plan) -> Result<Released> {
    let references: Vec<(Key, RefId)> =
        plan.releases.iter().map(|d| (d.key, d.reference)).collect();
    release_all(store, &references).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holders::{Holder, HolderKind, put_record};
    use crate::{Encoding, MemoryStore, Payload, PutOptions, StoreExt, StoreUrl};
    use bytes::Bytes;

    fn payload(seed: u8) -> Payload {
        Payload::frame(
            Encoding::Raw,
            Bytes::new(),
            vec![Bytes::from(vec![seed; 100])],
        )
    }

    /// A reference of `holder` made `age` seconds ago.
    fn made_ago(holder: HolderTag, age: u64) -> RefId {
        let mut b = *RefId::held_by(holder).as_bytes();
        let then = (unix_now() - age) as u32;
        b[8..12].copy_from_slice(&then.to_be_bytes());
        RefId::from_bytes(b)
    }

    #[tokio::test]
    async fn gc_dead_takes_orphans_past_their_grace_and_never_a_live_holders() {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
            MemoryStore::open(StoreUrl::parse("memory://gc").unwrap()).unwrap(),
        );
        let live = Holder::open(store.clone(), HolderKind::Process, "live", None)
            .await
            .unwrap();
        let closed = HolderTag::random();
        let put = |reference| {
            let store = store.clone();
            async move {
                let options = PutOptions {
                    reference,
                    ..PutOptions::new()
                };
                store.put_payload(&payload(1), &options).await.unwrap()
            }
        };
        let key = put(made_ago(closed, 3600)).await;
        put(made_ago(closed, 1)).await;
        put(made_ago(live.tag(), 3600)).await;
        put(made_ago(HolderTag::NOBODY, 3600)).await;
        let inventory = take(store.as_ref(), true).await.unwrap();
        assert_eq!(inventory.kinds[&key], "bytes");
        let plan = inventory.plan(&GcOptions {
            dead: true,
            ..GcOptions::default()
        });
        // Only the orphan past its grace: not the fresh one (its record may be on its way),
        // the live holder's, or a plain put's.
        assert_eq!(plan.releases.len(), 1, "{plan:?}");
        assert_eq!(plan.releases[0].reference.holder(), closed);
        assert_eq!(plan.objects, 0);
        let aged = inventory.plan(&GcOptions {
            older_than: Some(Duration::from_secs(60)),
            ..GcOptions::default()
        });
        assert_eq!(aged.releases.len(), 3);
        let all = inventory.plan(&GcOptions {
            holder: Some(live.tag()),
            ..GcOptions::default()
        });
        assert_eq!(
            all.releases.len(),
            2,
            "its reference and its record: {all:?}"
        );
        apply(store.as_ref(), &plan).await.unwrap();
        let left = store.list().await.unwrap();
        assert_eq!(left.iter().map(|l| l.references.len()).sum::<usize>(), 4);
        assert!(made_ago(closed, 10).created().unwrap() + 11 > unix_now());
    }

    /// A token holder copies a live holder's record with `kind: lease, expires: 1` and puts
    /// it under the holder's tag: the holder's own `gc --dead` must still keep its objects.
    #[tokio::test]
    async fn a_forged_record_cannot_make_a_live_holder_look_gone() {
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
            MemoryStore::open(StoreUrl::parse("memory://forged").unwrap()).unwrap(),
        );
        let victim = Holder::open(store.clone(), HolderKind::Process, "victim", None)
            .await
            .unwrap();
        let options = PutOptions {
            reference: RefId::held_by(victim.tag()),
            ..PutOptions::new()
        };
        let data = store.put_payload(&payload(5), &options).await.unwrap();
        let mut forged = victim.record().unwrap();
        forged.kind = HolderKind::Lease;
        forged.expires = Some(1);
        let forged_key = put_record(store.as_ref(), &forged).await.unwrap();
        let inventory = take(store.as_ref(), false).await.unwrap();
        assert_eq!(inventory.holders[&victim.tag()].kind, HolderKind::Process);
        let plan = inventory.plan(&GcOptions {
            dead: true,
            ..GcOptions::default()
        });
        assert!(
            plan.releases.iter().all(|d| d.key != data),
            "the live holder's object would go: {plan:?}"
        );
        // Once the holder holds nothing, the forgery is what goes, not the holder's record.
        store
            .release(&data, Some(&options.reference))
            .await
            .unwrap();
        let plan = take(store.as_ref(), false).await.unwrap().plan(&GcOptions {
            dead: true,
            ..GcOptions::default()
        });
        let released: Vec<Key> = plan.releases.iter().map(|d| d.key).collect();
        assert_eq!(released, vec![forged_key], "{plan:?}");
    }

    #[tokio::test]
    async fn an_object_posing_as_a_record_is_not_fetched_or_believed() {
        let store = MemoryStore::open(StoreUrl::parse("memory://posing").unwrap()).unwrap();
        let tag = HolderTag::random();
        let options = PutOptions {
            reference: RefId::record_of(tag),
            ..PutOptions::new()
        };
        // Too large to be a record: not fetched.
        let big = Payload::frame(
            Encoding::Raw,
            Bytes::new(),
            vec![Bytes::from(vec![7; 100_000])],
        );
        store.put_payload(&big, &options).await.unwrap();
        // Small, but not a record's JSON: fetched, not believed.
        store.put_payload(&payload(3), &options).await.unwrap();
        let inventory = take(&store, false).await.unwrap();
        assert!(inventory.holders.is_empty());
        assert_eq!(inventory.records.len(), 1);
    }

    #[test]
    fn a_record_is_gone_when_its_process_or_lease_is_and_unknown_elsewhere() {
        let mut record = HolderRecord::here(HolderTag::random(), HolderKind::Process, "", None);
        assert_eq!(record.liveness(unix_now()), Liveness::Alive);
        let here = record.clone();
        record.start += 1;
        assert!(
            matches!(record.liveness(unix_now()), Liveness::Gone(_)),
            "pid reused"
        );
        record = HolderRecord {
            boot: "another boot".into(),
            ..here.clone()
        };
        assert!(
            matches!(record.liveness(unix_now()), Liveness::Gone(_)),
            "rebooted"
        );
        record = HolderRecord {
            host: "elsewhere".into(),
            ..here.clone()
        };
        assert!(matches!(record.liveness(unix_now()), Liveness::Unknown(_)));
        record = HolderRecord {
            kind: HolderKind::Lease,
            expires: Some(unix_now() - 1),
            ..here
        };
        assert!(matches!(record.liveness(unix_now()), Liveness::Gone(_)));
        let back = HolderRecord::parse(
            &record.payload().to_owned_bytes(),
            "s",
            &record.payload().key(),
        );
        assert_eq!(back, Some(record));
    }
}
