//! Running a compiled transform on one message: the target starts empty or as the
//! source's segments, actions edit it in order, and the output is written with untouched
//! segments copied as they came ([`super::doc`]).

use hie_hl7::Message;

use super::compile::{CAct, CExpr, CValue, Compiled, Dest, Root};
use super::doc::Doc;
use super::model::{AssignKind, Create};
use crate::rules::Lookups;
use crate::rules::expr::{Env, Facts};

/// A transform's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The target message.
    pub message: Vec<u8>,
    /// What the `trace` actions said, in order.
    pub trace: Vec<String>,
}

/// Why a transform failed on a message (IRIS's transform error): the class, the line
/// of the action, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transform {class}, line {line}: {message}")]
pub struct RunError {
    pub class: String,
    pub line: u32,
    pub message: String,
}

enum Flow {
    Next,
    Break,
}

struct Run<'s, 'c> {
    c: &'c Compiled,
    msg: &'s Message<'s>,
    source: Doc<'s>,
    target: Doc<'s>,
    vars: Vec<Vec<u8>>,
    trace: Vec<String>,
    lookups: &'c Lookups,
    facts_name: String,
    scratch: Vec<u8>,
    /// An assign's value, reused.
    value: Vec<u8>,
    /// The source's placement, for `HL7.{..}` group paths in values.
    groups: crate::rules::vpath::Groups,
}

impl Compiled {
    /// Runs the transform on `msg` (the sending item's name is `source_item`).
    pub fn run(&self, msg: &Message<'_>, lookups: &Lookups) -> Result<Output, RunError> {
        let source = Doc::of(msg, self.source_structure);
        let target = match self.create {
            Create::Copy => Doc::of(msg, self.target_structure),
            _ => Doc::new(self.target_structure),
        };
        let name = format!(
            "{}_{}",
            String::from_utf8_lossy(msg.message_type().unwrap_or_default()),
            String::from_utf8_lossy(msg.trigger_event().unwrap_or_default())
        );
        let mut run = Run {
            c: self,
            msg,
            source,
            target,
            vars: vec![Vec::new(); self.vars.len()],
            trace: Vec::new(),
            lookups,
            facts_name: name,
            scratch: Vec::new(),
            value: Vec::new(),
            groups: crate::rules::vpath::Groups::default(),
        };
        run.acts(&self.acts)?;
        let mut message = Vec::with_capacity(msg.as_bytes().len() + 64);
        run.target.write(&mut message);
        Ok(Output {
            message,
            trace: run.trace,
        })
    }
}

impl<'s> Run<'s, '_> {
    fn fail(&self, line: u32, message: String) -> RunError {
        RunError {
            class: self.c.name.clone(),
            line,
            message,
        }
    }

    fn acts(&mut self, acts: &[CAct]) -> Result<Flow, RunError> {
        for a in acts {
            if let Flow::Break = self.act(a)? {
                return Ok(Flow::Break);
            }
        }
        Ok(Flow::Next)
    }

    /// The value of `e`, into `out`.
    fn eval(&mut self, e: &CExpr, out: &mut Vec<u8>) {
        for (slot, root, path) in &e.fills {
            let mut v = std::mem::take(&mut self.vars[*slot]);
            match root {
                Root::Source => self.source.get(path, &self.vars, &mut v),
                Root::Target => self.target.get(path, &self.vars, &mut v),
            }
            self.vars[*slot] = v;
        }
        let facts = Facts {
            source: "",
            msg_class: super::compile::HL7_CLASS,
            category: &self.c.source_category,
            name: &self.facts_name,
            structure: self.c.source_structure.map_or("", |s| s.name()),
        };
        let env = Env {
            msg: self.msg,
            facts: &facts,
            vars: &self.vars,
            segment: None,
            lookups: self.lookups,
            groups: &self.groups,
        };
        out.clear();
        out.extend_from_slice(e.expr.eval(&env).bytes());
    }

    fn truth(&mut self, e: &CExpr) -> bool {
        let mut v = std::mem::take(&mut self.scratch);
        self.eval(e, &mut v);
        let t = crate::rules::value::Val::Borrowed(&v).truth();
        self.scratch = v;
        t
    }

    fn act(&mut self, a: &CAct) -> Result<Flow, RunError> {
        match a {
            CAct::Assign {
                dest,
                kind,
                value,
                key,
                line,
            } => self.assign(dest, *kind, value, key.as_ref(), *line)?,
            CAct::If(cond, then, otherwise) => {
                let branch = if self.truth(cond) { then } else { otherwise };
                return self.acts(branch);
            }
            CAct::Foreach {
                root,
                path,
                key,
                body,
            } => {
                let n = match root {
                    Root::Source => self.source.count(path, &self.vars),
                    Root::Target => self.target.count(path, &self.vars),
                };
                for k in 1..=n {
                    self.vars[*key] = k.to_string().into_bytes();
                    if let Flow::Break = self.acts(body)? {
                        break;
                    }
                }
            }
            CAct::Switch(cases, default) => {
                for (cond, body) in cases {
                    if self.truth(cond) {
                        return self.acts(body);
                    }
                }
                return self.acts(default);
            }
            CAct::Sub {
                transform,
                from_target,
                line,
            } => self.sub(transform, *from_target, *line)?,
            CAct::Trace(e) => {
                let mut v = Vec::new();
                self.eval(e, &mut v);
                self.trace.push(String::from_utf8_lossy(&v).into_owned());
            }
            CAct::Break => return Ok(Flow::Break),
        }
        Ok(Flow::Next)
    }

    fn assign(
        &mut self,
        dest: &Dest,
        kind: AssignKind,
        value: &CValue,
        key: Option<&CExpr>,
        line: u32,
    ) -> Result<(), RunError> {
        let path = match dest {
            Dest::Var(slot) => {
                if let CValue::Expr(e) = value {
                    let mut v = std::mem::take(&mut self.vars[*slot]);
                    self.eval(e, &mut v);
                    self.vars[*slot] = v;
                }
                return Ok(());
            }
            Dest::Path(p) => p,
        };
        let key = match key {
            Some(k) => {
                let mut v = Vec::new();
                self.eval(k, &mut v);
                crate::rules::value::to_num(&v).max(1.0) as usize
            }
            None => 1,
        };
        if kind == AssignKind::Remove && path.field.is_none() {
            self.target.remove(path, &self.vars);
            return Ok(());
        }
        let segments = match value {
            CValue::Segments(src) => Some(self.source.segments_at(src, &self.vars)),
            CValue::Expr(_) => None,
        };
        let mut raw = std::mem::take(&mut self.value);
        raw.clear();
        if let CValue::Expr(e) = value {
            self.eval(e, &mut raw);
        }
        let r = self.apply(path, kind, segments, &raw, key, line);
        self.value = raw;
        r
    }

    fn apply(
        &mut self,
        path: &super::path::DPath,
        kind: AssignKind,
        segments: Option<Vec<Vec<u8>>>,
        raw: &[u8],
        key: usize,
        line: u32,
    ) -> Result<(), RunError> {
        let r = if path.field.is_some() {
            match kind {
                AssignKind::Append => self.target.set_field(path, &self.vars, raw, true),
                AssignKind::Insert => {
                    let mut p = path.clone();
                    if let Some(f) = p.field.as_mut() {
                        f.rep = super::path::Idx::Nth(key as u32);
                    }
                    self.target.set_field(&p, &self.vars, raw, false)
                }
                _ => self.target.set_field(path, &self.vars, raw, false),
            }
        } else {
            let segs = match segments {
                Some(s) => s,
                None => split_segments(raw),
            };
            if segs.is_empty() {
                // An empty source: nothing to create, unless GENERATEEMPTYSEGMENTS.
                if self.c.generate_empty_segments
                    && path.segment.is_some()
                    && kind != AssignKind::Clear
                {
                    let id = path.segment.unwrap_or_default().to_vec();
                    return self
                        .target
                        .put_segments(path, &self.vars, vec![id], false)
                        .map_err(|m| self.fail(line, m));
                }
                if kind == AssignKind::Clear {
                    self.target.remove(path, &self.vars);
                }
                return Ok(());
            }
            match kind {
                AssignKind::Append => self.target.put_segments(path, &self.vars, segs, true),
                AssignKind::Insert => {
                    let mut r = Ok(());
                    for (k, s) in segs.into_iter().enumerate() {
                        r = r.and(self.target.insert_segment(path, &self.vars, key + k, s));
                    }
                    r
                }
                _ => self.target.put_segments(path, &self.vars, segs, false),
            }
        };
        r.map_err(|m| self.fail(line, m))
    }

    fn sub(&mut self, t: &Compiled, from_target: bool, line: u32) -> Result<(), RunError> {
        let out = if from_target {
            let mut bytes = Vec::new();
            self.target.write(&mut bytes);
            let m = Message::scan(&bytes)
                .map_err(|e| self.fail(line, format!("the target so far does not scan: {e}")))?;
            t.run(&m, self.lookups)
        } else {
            t.run(self.msg, self.lookups)
        }
        .map_err(|e| self.fail(line, format!("subtransform: {e}")))?;
        self.trace.extend(out.trace);
        let m = Message::scan(&out.message).map_err(|e| {
            self.fail(
                line,
                format!("the subtransform's output does not scan: {e}"),
            )
        })?;
        let mut doc = Doc::new(self.c.target_structure);
        doc.delims = *m.delimiters();
        for s in m.segments() {
            doc.push(s.as_bytes().to_vec());
        }
        self.target = doc;
        Ok(())
    }
}

/// A value assigned to a whole segment: one segment, or several separated by CR / LF.
fn split_segments(raw: &[u8]) -> Vec<Vec<u8>> {
    raw.split(|&b| b == b'\r' || b == b'\n')
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}
