//! An in-memory Store/Folder for the session tests: one shared "world" so that two sessions (or a
//! test playing a delivery agent) see each other's changes through Folder::sync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::folder::{
    Changes, CopyResult, DELETED, FlagOp, Flags, Folder, FolderEntry, FolderError, MessageInfo, SEEN, Status,
    Store, Uid,
};

#[derive(Clone, Debug)]
pub struct Msg {
    pub uid: Uid,
    pub flags: Flags,
    pub recent: bool,
    pub body: Vec<u8>,
    pub date: i64,
}

#[derive(Clone, Debug)]
pub struct Mbox {
    pub uidvalidity: u32,
    pub uidnext: Uid,
    pub msgs: Vec<Msg>,
    pub special: Option<&'static str>,
    pub selectable: bool,
}

impl Mbox {
    fn new(uidvalidity: u32) -> Mbox {
        Mbox { uidvalidity, uidnext: 1, msgs: Vec::new(), special: None, selectable: true }
    }
}

#[derive(Debug, Default)]
pub struct World {
    pub boxes: BTreeMap<String, Mbox>,
    pub subs: BTreeSet<String>,
    pub next_validity: u32,
}

#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<World>>);

impl Shared {
    /// INBOX only.
    pub fn new() -> Shared {
        let s = Shared::default();
        s.lock().next_validity = 1000;
        s.add_box("INBOX");
        s
    }

    pub fn lock(&self) -> MutexGuard<'_, World> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn add_box(&self, name: &str) {
        let mut w = self.lock();
        w.next_validity += 1;
        let v = w.next_validity;
        w.boxes.insert(name.to_string(), Mbox::new(v));
    }

    /// A delivery: a new, \Recent message.
    pub fn deliver(&self, name: &str, body: &str, system: u8) -> Uid {
        let mut w = self.lock();
        let Some(b) = w.boxes.get_mut(name) else { panic!("no box {name}") };
        let uid = b.uidnext;
        b.uidnext += 1;
        b.msgs.push(Msg {
            uid,
            flags: Flags { system, keywords: Vec::new() },
            recent: true,
            body: body.as_bytes().to_vec(),
            date: 0,
        });
        uid
    }

    pub fn uids(&self, name: &str) -> Vec<Uid> {
        self.lock().boxes.get(name).map(|b| b.msgs.iter().map(|m| m.uid).collect()).unwrap_or_default()
    }

    pub fn store(&self) -> Box<dyn Store> {
        Box::new(FakeStore(self.clone()))
    }
}

pub struct FakeStore(pub Shared);

fn info(m: &Msg) -> MessageInfo {
    MessageInfo {
        uid: m.uid,
        flags: m.flags.clone(),
        size: u64::try_from(m.body.len()).unwrap_or(0),
        internal_date: m.date,
        recent: m.recent,
        modseq: 0,
    }
}

impl Store for FakeStore {
    fn list(&mut self) -> Result<Vec<FolderEntry>, FolderError> {
        let w = self.0.lock();
        let mut names: BTreeSet<String> = w.boxes.keys().cloned().collect();
        // Parents without a folder of their own.
        for n in w.boxes.keys() {
            let mut p = n.as_str();
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                names.insert(p.to_string());
            }
        }
        names.extend(w.subs.iter().cloned());
        let mut out: Vec<FolderEntry> = names
            .into_iter()
            .map(|name| {
                let b = w.boxes.get(&name);
                FolderEntry {
                    special_use: b.and_then(|b| b.special),
                    selectable: b.is_some_and(|b| b.selectable),
                    subscribed: w.subs.contains(&name),
                    name,
                }
            })
            .collect();
        out.sort_by_key(|e| e.name != "INBOX");
        Ok(out)
    }

    fn create(&mut self, name: &str) -> Result<(), FolderError> {
        if name.contains("..") || name.starts_with('/') {
            return Err(FolderError::BadName("Invalid mailbox name".into()));
        }
        if self.0.lock().boxes.contains_key(name) {
            return Err(FolderError::Exists);
        }
        self.0.add_box(name);
        Ok(())
    }

    fn delete(&mut self, name: &str) -> Result<(), FolderError> {
        let mut w = self.0.lock();
        if name == "INBOX" {
            return Err(FolderError::Cannot("INBOX cannot be deleted".into()));
        }
        let prefix = format!("{name}/");
        let has_children = w.boxes.keys().any(|k| k.starts_with(&prefix));
        match w.boxes.get_mut(name) {
            None => Err(FolderError::NotFound),
            Some(b) if has_children => {
                b.selectable = false;
                b.msgs.clear();
                Ok(())
            }
            Some(_) => {
                w.boxes.remove(name);
                Ok(())
            }
        }
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), FolderError> {
        let mut w = self.0.lock();
        if !w.boxes.contains_key(from) {
            return Err(FolderError::NotFound);
        }
        if w.boxes.contains_key(to) {
            return Err(FolderError::Exists);
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(FolderError::Cannot("Cannot rename a mailbox into itself".into()));
        }
        let prefix = format!("{from}/");
        let moving: Vec<String> =
            w.boxes.keys().filter(|k| k.as_str() == from || k.starts_with(&prefix)).cloned().collect();
        for old in moving {
            if let Some(b) = w.boxes.remove(&old) {
                w.boxes.insert(format!("{to}{}", &old[from.len()..]), b);
            }
        }
        Ok(())
    }

    fn subscribe(&mut self, name: &str, on: bool) -> Result<(), FolderError> {
        let mut w = self.0.lock();
        if on {
            w.subs.insert(name.to_string());
        } else {
            w.subs.remove(name);
        }
        Ok(())
    }

    fn status(&mut self, name: &str) -> Result<Status, FolderError> {
        let w = self.0.lock();
        let b = w.boxes.get(name).filter(|b| b.selectable).ok_or(FolderError::NotFound)?;
        let n = |f: &dyn Fn(&Msg) -> bool| u32::try_from(b.msgs.iter().filter(|m| f(m)).count()).unwrap_or(0);
        Ok(Status {
            messages: n(&|_| true),
            recent: n(&|m| m.recent),
            unseen: n(&|m| m.flags.system & SEEN == 0),
            deleted: n(&|m| m.flags.system & DELETED != 0),
            uidnext: b.uidnext,
            uidvalidity: b.uidvalidity,
            size: b.msgs.iter().map(|m| m.body.len() as u64).sum(),
            highest_modseq: 0,
        })
    }

    fn append(
        &mut self,
        name: &str,
        flags: &Flags,
        date: Option<i64>,
        message: &[u8],
    ) -> Result<CopyResult, FolderError> {
        let mut w = self.0.lock();
        let b = w.boxes.get_mut(name).filter(|b| b.selectable).ok_or(FolderError::NotFound)?;
        let uid = b.uidnext;
        b.uidnext += 1;
        b.msgs.push(Msg {
            uid,
            flags: flags.clone(),
            recent: true,
            body: message.to_vec(),
            date: date.unwrap_or(0),
        });
        Ok(CopyResult { uidvalidity: b.uidvalidity, source: Vec::new(), dest: vec![uid] })
    }

    fn open(&mut self, name: &str, readonly: bool) -> Result<Box<dyn Folder>, FolderError> {
        let mut w = self.0.lock();
        let b = w.boxes.get_mut(name).ok_or(FolderError::NotFound)?;
        if !b.selectable {
            return Err(FolderError::Cannot("Mailbox is not selectable".into()));
        }
        let view: Vec<MessageInfo> = b.msgs.iter().map(info).collect();
        if !readonly {
            // This session is the first to see them: \Recent is claimed.
            for m in &mut b.msgs {
                m.recent = false;
            }
        }
        Ok(Box::new(FakeFolder {
            world: self.0.clone(),
            name: name.to_string(),
            readonly,
            uidvalidity: b.uidvalidity,
            view,
        }))
    }

    fn copy(
        &mut self,
        from: &mut dyn Folder,
        indexes: &[usize],
        dest: &str,
    ) -> Result<CopyResult, FolderError> {
        let mut w = self.0.lock();
        let src: Vec<Msg> = {
            let sb = w.boxes.get(from.name()).ok_or(FolderError::NotFound)?;
            let mut v = Vec::new();
            for &i in indexes {
                let uid = from.messages().get(i).ok_or(FolderError::Expunged)?.uid;
                v.push(sb.msgs.iter().find(|m| m.uid == uid).ok_or(FolderError::Expunged)?.clone());
            }
            v
        };
        let b = w.boxes.get_mut(dest).filter(|b| b.selectable).ok_or(FolderError::NotFound)?;
        let mut res = CopyResult { uidvalidity: b.uidvalidity, source: Vec::new(), dest: Vec::new() };
        for m in src {
            let uid = b.uidnext;
            b.uidnext += 1;
            res.source.push(m.uid);
            res.dest.push(uid);
            b.msgs.push(Msg { uid, recent: true, ..m });
        }
        Ok(res)
    }
}

pub struct FakeFolder {
    world: Shared,
    name: String,
    readonly: bool,
    uidvalidity: u32,
    view: Vec<MessageInfo>,
}

impl FakeFolder {
    fn world_msgs(&self) -> Vec<Msg> {
        self.world.lock().boxes.get(&self.name).map(|b| b.msgs.clone()).unwrap_or_default()
    }
}

impl Folder for FakeFolder {
    fn name(&self) -> &str {
        &self.name
    }
    fn readonly(&self) -> bool {
        self.readonly
    }
    fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }
    fn uidnext(&self) -> Uid {
        self.world.lock().boxes.get(&self.name).map_or(1, |b| b.uidnext)
    }
    fn messages(&self) -> &[MessageInfo] {
        &self.view
    }
    fn keywords(&self) -> Vec<String> {
        let mut k: Vec<String> = self.view.iter().flat_map(|m| m.flags.keywords.clone()).collect();
        k.sort();
        k.dedup();
        k
    }
    fn sync(&mut self, expunges: bool) -> Result<Changes, FolderError> {
        let now = self.world_msgs();
        let mut ch = Changes::default();
        if expunges {
            let mut i = 0;
            while i < self.view.len() {
                if now.iter().any(|m| m.uid == self.view[i].uid) {
                    i += 1;
                } else {
                    self.view.remove(i);
                    ch.expunged.push(u32::try_from(i + 1).unwrap_or(0));
                }
            }
        }
        for (i, v) in self.view.iter_mut().enumerate() {
            if let Some(m) = now.iter().find(|m| m.uid == v.uid)
                && m.flags != v.flags
            {
                v.flags = m.flags.clone();
                ch.flags.push(i);
            }
        }
        let last = self.view.last().map_or(0, |m| m.uid);
        let before = self.view.len();
        let mut claimed = Vec::new();
        for m in now.iter().filter(|m| m.uid > last) {
            self.view.push(info(m));
            claimed.push(m.uid);
        }
        if self.view.len() > before {
            ch.exists = Some(u32::try_from(self.view.len()).unwrap_or(0));
            if !self.readonly
                && let Some(b) = self.world.lock().boxes.get_mut(&self.name)
            {
                for m in b.msgs.iter_mut().filter(|m| claimed.contains(&m.uid)) {
                    m.recent = false;
                }
            }
        }
        Ok(ch)
    }
    fn changed(&mut self) -> bool {
        let now = self.world_msgs();
        now.len() != self.view.len()
            || now.iter().zip(&self.view).any(|(m, v)| m.uid != v.uid || m.flags != v.flags)
    }
    fn read(&mut self, index: usize) -> Result<Vec<u8>, FolderError> {
        let uid = self.view.get(index).ok_or(FolderError::Expunged)?.uid;
        self.world_msgs().into_iter().find(|m| m.uid == uid).map(|m| m.body).ok_or(FolderError::Expunged)
    }
    fn store(&mut self, indexes: &[usize], op: FlagOp, flags: &Flags) -> Result<(), FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        let mut w = self.world.lock();
        let b = w.boxes.get_mut(&self.name).ok_or(FolderError::NotFound)?;
        for &i in indexes {
            let Some(v) = self.view.get_mut(i) else { continue };
            let new = match op {
                FlagOp::Replace => flags.clone(),
                FlagOp::Add => {
                    let mut k = v.flags.keywords.clone();
                    k.extend(flags.keywords.iter().cloned());
                    k.sort();
                    k.dedup();
                    Flags { system: v.flags.system | flags.system, keywords: k }
                }
                FlagOp::Remove => Flags {
                    system: v.flags.system & !flags.system,
                    keywords: v
                        .flags
                        .keywords
                        .iter()
                        .filter(|k| !flags.keywords.contains(k))
                        .cloned()
                        .collect(),
                },
            };
            v.flags = new.clone();
            if let Some(m) = b.msgs.iter_mut().find(|m| m.uid == v.uid) {
                m.flags = new;
            }
        }
        Ok(())
    }
    fn expunge(&mut self, uids: Option<&[Uid]>) -> Result<Vec<u32>, FolderError> {
        if self.readonly {
            return Err(FolderError::ReadOnly);
        }
        let mut w = self.world.lock();
        let b = w.boxes.get_mut(&self.name).ok_or(FolderError::NotFound)?;
        let gone = |m: &MessageInfo| m.flags.system & DELETED != 0 && uids.is_none_or(|u| u.contains(&m.uid));
        let mut nums = Vec::new();
        let mut i = 0;
        while i < self.view.len() {
            if gone(&self.view[i]) {
                let uid = self.view[i].uid;
                b.msgs.retain(|m| m.uid != uid);
                self.view.remove(i);
                nums.push(u32::try_from(i + 1).unwrap_or(0));
            } else {
                i += 1;
            }
        }
        Ok(nums)
    }
}
