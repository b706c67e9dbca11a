//! THREAD (RFC 5256 3 and 4): the ORDEREDSUBJECT and REFERENCES algorithms over messages' keys
//! (sort/keys.rs), and the thread-list response. No I/O, and no recursion: the message-ids of
//! hostile messages can neither make a loop (RFC 5256 3 step 1: no link that would close one)
//! nor a deep stack (every walk over the trees is iterative) nor quadratic work (References are
//! capped at [`MAX_REFERENCES`](crate::imap::sort::keys::MAX_REFERENCES) ids, the loop check
//! follows path-compressed jump pointers within a bounded budget, and children lists are merged
//! smaller into larger).

use std::collections::HashMap;

use crate::imap::sort::Item;

#[cfg(test)]
mod tests;

/// The loop checks of one THREAD command may take this many steps in all; past it each walk is
/// cut at [`SHORT_WALK`] steps and then makes no link. Real mailboxes stay far below it (the
/// walks follow path-compressed jump pointers); only hostile References reach it.
const WALK_BUDGET: usize = 20_000_000;
const SHORT_WALK: usize = 32;

/// A thread tree: messages (indexes into the items threaded) and dummies that stand for missing
/// parents.
#[derive(Debug, Default)]
pub struct Forest {
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

#[derive(Debug, Default)]
struct Node {
    /// The item, or None for a dummy.
    item: Option<usize>,
    children: Vec<usize>,
}

impl Forest {
    fn add(&mut self, item: Option<usize>) -> usize {
        self.nodes.push(Node { item, children: Vec::new() });
        self.nodes.len() - 1
    }

    fn item(&self, n: usize) -> Option<usize> {
        self.nodes.get(n).and_then(|x| x.item)
    }

    fn children(&self, n: usize) -> &[usize] {
        self.nodes.get(n).map(|x| x.children.as_slice()).unwrap_or_default()
    }

    fn take_children(&mut self, n: usize) -> Vec<usize> {
        self.nodes.get_mut(n).map(|x| std::mem::take(&mut x.children)).unwrap_or_default()
    }

    fn set_children(&mut self, n: usize, c: Vec<usize>) {
        if let Some(x) = self.nodes.get_mut(n) {
            x.children = c;
        }
    }

    /// Every node under the roots, parents before their children.
    fn preorder(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<usize> = self.roots.iter().rev().copied().collect();
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.children(n).iter().rev());
        }
        out
    }

    /// RFC 5256 4 thread-list responses, one `(...)` per thread: a message's only child follows it
    /// in the same list, two or more children each get a list of their own; a dummy has no number.
    pub fn render(&self, number: impl Fn(usize) -> u32) -> String {
        enum Task {
            Text(&'static str),
            Members(usize),
        }
        let mut out = String::new();
        let mut stack = Vec::new();
        for &r in self.roots.iter().rev() {
            stack.extend([Task::Text(")"), Task::Members(r), Task::Text("(")]);
        }
        while let Some(t) = stack.pop() {
            let n = match t {
                Task::Text(s) => {
                    out.push_str(s);
                    continue;
                }
                Task::Members(n) => n,
            };
            let has = self.item(n).map(|i| out.push_str(&number(i).to_string())).is_some();
            match self.children(n) {
                [] => {}
                [only] => {
                    stack.push(Task::Members(*only));
                    if has {
                        stack.push(Task::Text(" "));
                    }
                }
                many => {
                    for &c in many.iter().rev() {
                        stack.extend([Task::Text(")"), Task::Members(c), Task::Text("(")]);
                    }
                    if has {
                        stack.push(Task::Text(" "));
                    }
                }
            }
        }
        out
    }

    /// RFC 5256 2.2 order key of a node: its message's sent date and number, or a dummy's first
    /// child's.
    fn key(&self, items: &[Item<'_>], mut n: usize) -> (i64, usize) {
        loop {
            if let Some(it) = self.item(n).and_then(|i| items.get(i)) {
                return (it.sent(), it.index);
            }
            match self.children(n).first() {
                Some(&c) => n = c,
                None => return (i64::MAX, usize::MAX),
            }
        }
    }

    /// Sorts the children of `n` by date (RFC 5256 2.2).
    fn sort_children(&mut self, items: &[Item<'_>], n: usize) {
        let mut c = self.take_children(n);
        c.sort_by_key(|&x| self.key(items, x));
        self.set_children(n, c);
    }

    fn sort_roots(&mut self, items: &[Item<'_>]) {
        let mut r = std::mem::take(&mut self.roots);
        r.sort_by_key(|&x| self.key(items, x));
        self.roots = r;
    }
}

/// THREAD=ORDEREDSUBJECT (RFC 5256 3): messages grouped by base subject; in each group the first
/// by sent date is the parent of all the others, in date order; threads ordered by their first
/// message's sent date.
pub fn ordered_subject(items: &[Item<'_>]) -> Forest {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| match (items.get(a), items.get(b)) {
        (Some(x), Some(y)) => x.keys.subject.cmp(&y.keys.subject).then(x.date_order(y)),
        _ => a.cmp(&b),
    });
    let mut f = Forest::default();
    let mut current: Option<(usize, &str)> = None;
    for i in order {
        let Some(it) = items.get(i) else { continue };
        let node = f.add(Some(i));
        match current {
            Some((parent, subject)) if subject == &*it.keys.subject => {
                if let Some(p) = f.nodes.get_mut(parent) {
                    p.children.push(node);
                }
            }
            _ => {
                f.roots.push(node);
                current = Some((node, &it.keys.subject));
            }
        }
    }
    f.sort_roots(items);
    f
}

/// Parent links during step 1, and jump pointers that make the loop check cheap: `jump[n]` is an
/// ancestor of `n` (its root when set) while its epoch is current. Links only add ancestors, so a
/// jump stays true until a link is cut (step 1.B), which starts a new epoch.
struct Links {
    parent: Vec<Option<usize>>,
    jump: Vec<(usize, u32)>,
    epoch: u32,
    budget: usize,
    path: Vec<usize>,
}

impl Links {
    fn add(&mut self) {
        let n = self.parent.len();
        self.parent.push(None);
        self.jump.push((n, 0));
    }

    fn parent(&self, n: usize) -> Option<usize> {
        self.parent.get(n).copied().flatten()
    }

    /// The root above `n`, or None when the walk ran past its bound.
    fn root(&mut self, n: usize) -> Option<usize> {
        let cap = if self.budget > 0 { usize::MAX } else { SHORT_WALK };
        self.path.clear();
        let mut x = n;
        loop {
            let next = match self.jump.get(x) {
                Some(&(j, e)) if e == self.epoch && j != x => Some(j),
                _ => self.parent(x),
            };
            let Some(next) = next else { break };
            self.path.push(x);
            x = next;
            if self.path.len() >= cap {
                return None;
            }
        }
        self.budget = self.budget.saturating_sub(self.path.len());
        for &p in &self.path {
            if let Some(j) = self.jump.get_mut(p) {
                *j = (x, self.epoch);
            }
        }
        Some(x)
    }

    /// RFC 5256 3 step 1: linking `child` (a root: it has no parent) under `parent` would make a
    /// loop when `child` is `parent` or above it, that is when it is `parent`'s root. A walk cut
    /// short counts as a loop.
    fn would_loop(&mut self, parent: usize, child: usize) -> bool {
        self.root(parent).is_none_or(|r| r == child)
    }

    fn link(&mut self, child: usize, parent: Option<usize>) {
        if let Some(slot) = self.parent.get_mut(child) {
            if slot.is_some() && parent.is_none() {
                // A cut: jumps across it may be false now.
                self.epoch = self.epoch.wrapping_add(1);
            }
            *slot = parent;
        }
    }
}

/// THREAD=REFERENCES (RFC 5256 3, steps 1 to 6). `items` are in message-number order.
pub fn references(items: &[Item<'_>]) -> Forest {
    let mut f = Forest::default();
    let mut links =
        Links { parent: Vec::new(), jump: Vec::new(), epoch: 1, budget: WALK_BUDGET, path: Vec::new() };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let new_node = |f: &mut Forest, links: &mut Links, item: Option<usize>| {
        links.add();
        f.add(item)
    };
    // Step 1: link messages by their references.
    for (i, it) in items.iter().enumerate() {
        // A message takes over the dummy its Message-ID made; one without a Message-ID, or with
        // one already taken by another message, gets a node of its own (a unique id).
        let me = match it.keys.message_id.as_deref() {
            Some(id) => match ids.get(id).copied() {
                Some(n) if f.item(n).is_none() => {
                    if let Some(x) = f.nodes.get_mut(n) {
                        x.item = Some(i);
                    }
                    n
                }
                Some(_) => new_node(&mut f, &mut links, Some(i)),
                None => {
                    let n = new_node(&mut f, &mut links, Some(i));
                    ids.insert(id, n);
                    n
                }
            },
            None => new_node(&mut f, &mut links, Some(i)),
        };
        // 1.A: each reference the parent of the next, unless the next has a parent already or the
        // link would close a loop; unknown ids become dummies, found again by later references.
        let mut prev: Option<usize> = None;
        for r in &it.keys.references {
            let x = match ids.get(&**r).copied() {
                Some(n) => n,
                None => {
                    let n = new_node(&mut f, &mut links, None);
                    ids.insert(r, n);
                    n
                }
            };
            if let Some(p) = prev
                && links.parent(x).is_none()
                && !links.would_loop(p, x)
            {
                links.link(x, Some(p));
            }
            prev = Some(x);
        }
        // 1.B: the last reference (or none) is the parent, replacing any link 1.A made, unless
        // that would close a loop.
        match prev {
            Some(p) if links.parent(me) == Some(p) => {}
            _ => {
                links.link(me, None);
                if let Some(p) = prev
                    && !links.would_loop(p, me)
                {
                    links.link(me, Some(p));
                }
            }
        }
    }
    // Step 2: nodes without a parent are the roots; the others become their parents' children.
    for (n, p) in links.parent.iter().enumerate() {
        match p {
            Some(p) => {
                if let Some(x) = f.nodes.get_mut(*p) {
                    x.children.push(n);
                }
            }
            None => f.roots.push(n),
        }
    }
    prune(&mut f);
    // Step 4: the roots by sent date, a dummy by its earliest child.
    for r in f.roots.clone() {
        if f.item(r).is_none() {
            f.sort_children(items, r);
        }
    }
    f.sort_roots(items);
    merge_subjects(&mut f, items);
    // Step 6: every set of siblings by sent date, deepest first, the roots last.
    for n in f.preorder().into_iter().rev() {
        f.sort_children(items, n);
    }
    f.sort_roots(items);
    f
}

/// RFC 5256 3 step 3: dummies without children go; a dummy's children take its place, except
/// that two or more children of a dummy at the top stay under it.
fn prune(f: &mut Forest) {
    // Children before their parents, so a dummy's children are final when it is spliced.
    for n in f.preorder().into_iter().rev() {
        let kids = f.take_children(n);
        let mut out: Vec<usize> = Vec::with_capacity(kids.len());
        for c in kids {
            if f.item(c).is_some() {
                out.push(c);
                continue;
            }
            // Smaller into larger: a hostile chain of dummies costs n log n, not n².
            let mut promoted = f.take_children(c);
            if promoted.len() > out.len() {
                std::mem::swap(&mut out, &mut promoted);
            }
            out.append(&mut promoted);
        }
        f.set_children(n, out);
    }
    let roots = std::mem::take(&mut f.roots);
    for r in roots {
        if f.item(r).is_some() {
            f.roots.push(r);
            continue;
        }
        match f.children(r) {
            [] => {}
            [only] => {
                let only = *only;
                f.roots.push(only);
            }
            _ => f.roots.push(r),
        }
    }
}

/// RFC 5256 3 step 5: threads whose subjects have the same base subject are gathered.
fn merge_subjects(f: &mut Forest, items: &[Item<'_>]) {
    // 5.B.i: a thread's subject is its root message's, or a dummy's first child's.
    let subject = |f: &Forest, n: usize| -> Option<(Box<str>, bool)> {
        let i = f.item(n).or_else(|| f.children(n).first().and_then(|&c| f.item(c)))?;
        let k = items.get(i)?.keys;
        (!k.subject.is_empty()).then(|| (k.subject.clone(), k.refwd))
    };
    let refwd = |f: &Forest, n: usize| f.item(n).and_then(|i| items.get(i)).is_some_and(|it| it.keys.refwd);
    // 5.B: one thread per subject in the table; a dummy wins over a message, a message that is
    // not a reply or forward over one that is.
    let mut table: HashMap<Box<str>, usize> = HashMap::new();
    for &r in &f.roots {
        let Some((s, r_refwd)) = subject(f, r) else { continue };
        match table.get(&s).copied() {
            None => {
                table.insert(s, r);
            }
            Some(t) => {
                if f.item(t).is_some() && (f.item(r).is_none() || (refwd(f, t) && !r_refwd)) {
                    table.insert(s, r);
                }
            }
        }
    }
    // 5.C: merge each other thread with the table's.
    let mut slots: Vec<Option<usize>> = f.roots.iter().map(|&r| Some(r)).collect();
    let mut pos: HashMap<usize, usize> = f.roots.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    for i in 0..slots.len() {
        let Some(cur) = slots.get(i).copied().flatten() else { continue };
        let Some((s, cur_refwd)) = subject(f, cur) else { continue };
        let Some(t) = table.get(&s).copied() else { continue };
        if t == cur {
            continue;
        }
        let (t_dummy, cur_dummy) = (f.item(t).is_none(), f.item(cur).is_none());
        if t_dummy && cur_dummy {
            // Both dummies: the current one's children join the table's.
            let mut kids = f.take_children(cur);
            if let Some(x) = f.nodes.get_mut(t) {
                x.children.append(&mut kids);
            }
        } else if t_dummy || (cur_refwd && !cur_dummy && !refwd(f, t)) {
            // Under the table's dummy, or a reply under its original.
            if let Some(x) = f.nodes.get_mut(t) {
                x.children.push(cur);
            }
        } else {
            // A new dummy holds both, in the table's place.
            let d = f.add(None);
            f.set_children(d, vec![t, cur]);
            if let Some(&p) = pos.get(&t)
                && let Some(slot) = slots.get_mut(p)
            {
                *slot = Some(d);
                pos.insert(d, p);
            }
            table.insert(s, d);
        }
        if let Some(slot) = slots.get_mut(i) {
            *slot = None;
        }
    }
    f.roots = slots.into_iter().flatten().collect();
}
