//! A DTL class compiled for running: paths resolved with the schema tables, values
//! compiled with the rules' expression compiler ([`crate::rules::expr`]), variables and
//! `foreach` keys given slots, subtransforms compiled in. Every error names the class,
//! the action and its line.
//!
//! Paths inside values (`source.{PID:5}`, `target.{MSH:10}`) become variables of the
//! expression that the run fills before evaluating it (the expression compiler knows
//! them by their text).

use std::path::Path;

use hie_hl7::schema::{Schema, Structure, schema};

use super::TransformError;
use super::model::{Action, AssignKind, Create, Transform, code_blocks};
use super::path::{DPath, Idx, PathCtx, parse};
use crate::rules::Lookups;
use crate::rules::expr::{Expr, Scope, compile};

/// Subtransforms nested deeper than this are refused (a class that calls itself).
pub const SUBTRANSFORM_DEPTH_MAX: usize = 8;

/// The message class hie transforms.
pub const HL7_CLASS: &str = "EnsLib.HL7.Message";

/// Which message a path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Source,
    Target,
}

/// A compiled expression and the paths it reads, by variable slot.
#[derive(Debug)]
pub struct CExpr {
    pub expr: Expr,
    pub fills: Vec<(usize, Root, DPath)>,
}

/// The value of an assign.
#[derive(Debug)]
pub enum CValue {
    Expr(CExpr),
    /// `source.{SEG}` / `source.{GROUP}` to a whole segment or group: the segments.
    Segments(DPath),
}

/// Where an assign writes.
#[derive(Debug)]
pub enum Dest {
    Path(DPath),
    Var(usize),
}

/// A compiled action.
#[derive(Debug)]
pub enum CAct {
    Assign {
        dest: Dest,
        kind: AssignKind,
        value: CValue,
        key: Option<CExpr>,
        line: u32,
    },
    If(CExpr, Vec<CAct>, Vec<CAct>),
    Foreach {
        root: Root,
        path: DPath,
        key: usize,
        body: Vec<CAct>,
    },
    Switch(Vec<(CExpr, Vec<CAct>)>, Vec<CAct>),
    Sub {
        transform: Box<Compiled>,
        from_target: bool,
        line: u32,
    },
    Trace(CExpr),
    Break,
}

/// A transform ready to run.
#[derive(Debug)]
pub struct Compiled {
    pub name: String,
    pub create: Create,
    pub source_category: String,
    pub source_structure: Option<&'static Structure>,
    pub target_structure: Option<&'static Structure>,
    pub generate_empty_segments: bool,
    pub vars: Vec<String>,
    pub acts: Vec<CAct>,
    /// `code` / `sql` blocks skipped (the production allowed it): (element, line).
    pub skipped: Vec<(&'static str, u32)>,
}

/// What compiling needs besides the class.
pub struct Env<'a> {
    pub lookups: &'a Lookups,
    /// The DTL class of a name, with its file (for subtransforms).
    pub find: &'a dyn Fn(&str) -> Option<(std::path::PathBuf, Transform)>,
    /// Load a class that has `code` / `sql` blocks, skipping them (engine setting
    /// `transform_skip_code`, `hie transform --skip-code`).
    pub skip_code: bool,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("skip_code", &self.skip_code)
            .finish_non_exhaustive()
    }
}

/// Compiles `t`, read from `file`.
pub fn compile_transform(
    t: &Transform,
    file: &Path,
    env: &Env<'_>,
) -> Result<Compiled, TransformError> {
    compile_at(t, file, env, 0)
}

fn compile_at(
    t: &Transform,
    file: &Path,
    env: &Env<'_>,
    depth: usize,
) -> Result<Compiled, TransformError> {
    let err = |line: u32, action: Option<&str>, message: String| TransformError {
        file: file.to_path_buf(),
        line,
        class: Some(t.name.clone()),
        action: action.map(str::to_owned),
        message,
    };
    let mut code = Vec::new();
    code_blocks(&t.actions, &mut code);
    if !code.is_empty() && !env.skip_code {
        let list: Vec<String> = code
            .iter()
            .map(|(e, l)| format!("<{e}> at line {l}"))
            .collect();
        return Err(err(
            code[0].1,
            Some(code[0].0),
            format!(
                "ObjectScript blocks hie cannot run: {}; set [engine] transform_skip_code = true to load the class without them",
                list.join(", ")
            ),
        ));
    }
    for (what, class) in [
        ("sourceClass", &t.source_class),
        ("targetClass", &t.target_class),
    ] {
        if class != HL7_CLASS {
            return Err(err(
                t.line,
                Some("transform"),
                format!("{what}={class:?}: hie transforms {HL7_CLASS} to {HL7_CLASS} only"),
            ));
        }
    }
    if t.create == Create::Existing {
        return Err(err(
            t.line,
            Some("transform"),
            "create=\"existing\" transforms an object passed in as target, which a router (and hie transform) does not pass".into(),
        ));
    }
    let (src_schema, src_structure) = doc_type(&t.source_doc_type, &t.target_doc_type);
    let (tgt_schema, tgt_structure) = doc_type(&t.target_doc_type, &t.source_doc_type);
    let mut c = Compiler {
        t,
        file,
        env,
        depth,
        vars: Vec::new(),
        src: (src_schema, src_structure.is_some()),
        tgt: (tgt_schema, tgt_structure.is_some()),
    };
    c.collect_vars(&t.actions);
    let acts = c.actions(&t.actions)?;
    Ok(Compiled {
        name: t.name.clone(),
        create: t.create,
        source_category: t
            .source_doc_type
            .split_once(':')
            .map_or("", |(c, _)| c)
            .to_owned(),
        source_structure: src_structure,
        target_structure: tgt_structure,
        generate_empty_segments: t.generate_empty_segments,
        vars: c.vars,
        acts,
        skipped: code,
    })
}

/// The schema and structure of a doc type `Category:Structure`; a category that is no
/// HL7 version hie has tables for borrows the other side's version.
fn doc_type(doc: &str, other: &str) -> (Option<&'static Schema>, Option<&'static Structure>) {
    let (cat, name) = doc.split_once(':').unwrap_or(("", doc));
    let other_cat = other.split_once(':').map_or("", |(c, _)| c);
    let s = schema(cat.trim()).or_else(|| schema(other_cat.trim()));
    let structure = s.and_then(|s| s.structure(name.trim()));
    (s, structure)
}

struct Compiler<'a> {
    t: &'a Transform,
    file: &'a Path,
    env: &'a Env<'a>,
    depth: usize,
    vars: Vec<String>,
    src: (Option<&'static Schema>, bool),
    tgt: (Option<&'static Schema>, bool),
}

impl Compiler<'_> {
    fn err(&self, a: &Action, message: String) -> TransformError {
        TransformError {
            file: self.file.to_path_buf(),
            line: a.line(),
            class: Some(self.t.name.clone()),
            action: Some(a.element().to_owned()),
            message,
        }
    }

    fn var(&mut self, name: &str) -> usize {
        match self.vars.iter().position(|v| v == name) {
            Some(i) => i,
            None => {
                self.vars.push(name.to_owned());
                self.vars.len() - 1
            }
        }
    }

    /// Slots for temporary variables, foreach keys and every path read by a value.
    fn collect_vars(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Assign {
                    property,
                    value,
                    key,
                    ..
                } => {
                    if !property.contains('.') {
                        self.var(property.trim());
                    }
                    for text in [value, key] {
                        for r in path_refs(text) {
                            self.var(&r);
                        }
                    }
                }
                Action::If {
                    condition,
                    then,
                    otherwise,
                    ..
                } => {
                    for r in path_refs(condition) {
                        self.var(&r);
                    }
                    self.collect_vars(then);
                    self.collect_vars(otherwise);
                }
                Action::Foreach { key, actions, .. } => {
                    self.var(key.trim());
                    self.collect_vars(actions);
                }
                Action::Switch { cases, default, .. } => {
                    for (cond, _, body) in cases {
                        for r in path_refs(cond) {
                            self.var(&r);
                        }
                        self.collect_vars(body);
                    }
                    self.collect_vars(default);
                }
                Action::Group { actions, .. } => self.collect_vars(actions),
                Action::Trace { value, .. } => {
                    for r in path_refs(value) {
                        self.var(&r);
                    }
                }
                _ => {}
            }
        }
    }

    fn path(&self, root: Root, inner: &str) -> Result<DPath, String> {
        let (schema, has_structure) = match root {
            Root::Source => self.src,
            Root::Target => self.tgt,
        };
        let vars = &self.vars;
        let var = |n: &str| vars.iter().position(|v| v == n);
        parse(
            inner,
            &PathCtx {
                schema,
                has_structure,
                segment_doc: None,
                var: &var,
            },
        )
    }

    /// `root.{inner}` → (root, path).
    fn root_path(&self, text: &str) -> Result<(Root, DPath), String> {
        let text = text.trim();
        let (root, rest) = text
            .split_once(".{")
            .ok_or_else(|| format!("{text:?} is no source.{{..}} or target.{{..}} path"))?;
        let inner = rest
            .strip_suffix('}')
            .ok_or_else(|| format!("{text:?}: the path is not closed by }}"))?;
        let root = match root {
            "source" => Root::Source,
            "target" => Root::Target,
            other => {
                return Err(format!(
                    "{other}.{{..}}: hie reads paths of source and target only"
                ));
            }
        };
        Ok((root, self.path(root, inner)?))
    }

    fn expr(&self, a: &Action, what: &str, text: &str) -> Result<CExpr, TransformError> {
        let mut fills = Vec::new();
        for r in path_refs(text) {
            let slot = self.vars.iter().position(|v| *v == r).unwrap_or(0);
            let (root, path) = self
                .root_path(&r)
                .map_err(|m| self.err(a, format!("{what} {text:?}: {m}")))?;
            fills.push((slot, root, path));
        }
        let read_lines = |f: &str| -> Result<Vec<String>, String> {
            let p = self.file.parent().unwrap_or(Path::new(".")).join(f);
            std::fs::read_to_string(&p)
                .map(|t| t.lines().map(str::to_owned).collect())
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        let scope = Scope {
            vars: &self.vars,
            lookups: self.env.lookups,
            read_lines: &read_lines,
            foreach_segment: None,
        };
        let expr = compile(text, &scope).map_err(|(pos, m)| {
            self.err(
                a,
                format!("{what} {text:?} does not compile (at character {pos}): {m}"),
            )
        })?;
        Ok(CExpr { expr, fills })
    }

    fn actions(&mut self, actions: &[Action]) -> Result<Vec<CAct>, TransformError> {
        let mut out = Vec::new();
        for a in actions {
            if let Some(c) = self.action(a)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    fn action(&mut self, a: &Action) -> Result<Option<CAct>, TransformError> {
        Ok(Some(match a {
            Action::Assign {
                property,
                value,
                kind,
                key,
                line,
            } => self.assign(a, property, value, *kind, key, *line)?,
            Action::If {
                condition,
                then,
                otherwise,
                ..
            } => CAct::If(
                self.expr(a, "condition", condition)?,
                self.actions(then)?,
                self.actions(otherwise)?,
            ),
            Action::Foreach {
                property,
                key,
                actions,
                ..
            } => {
                let (root, path) = self
                    .root_path(property)
                    .map_err(|m| self.err(a, format!("property {property:?}: {m}")))?;
                let last_all = path.field.map_or_else(
                    || path.steps.last().is_some_and(|s| s.idx == Idx::All),
                    |f| f.rep == Idx::All,
                );
                if !last_all {
                    return Err(self.err(a, format!("property {property:?}: a foreach path ends in () (every instance), e.g. source.{{OBX()}}")));
                }
                let key = self.vars.iter().position(|v| v == key.trim()).unwrap_or(0);
                CAct::Foreach {
                    root,
                    path,
                    key,
                    body: self.actions(actions)?,
                }
            }
            Action::Switch { cases, default, .. } => {
                let mut cs = Vec::new();
                for (cond, _, body) in cases {
                    cs.push((self.expr(a, "case condition", cond)?, self.actions(body)?));
                }
                CAct::Switch(cs, self.actions(default)?)
            }
            Action::Group { actions, .. } => {
                // A group is its actions, in place.
                let mut inner = self.actions(actions)?;
                if inner.len() == 1 {
                    return Ok(inner.pop());
                }
                CAct::If(
                    CExpr {
                        expr: Expr::Lit(Box::new(*b"1")),
                        fills: Vec::new(),
                    },
                    inner,
                    Vec::new(),
                )
            }
            Action::Subtransform {
                class,
                source_obj,
                target_obj,
                line,
            } => self.subtransform(a, class, source_obj, target_obj, *line)?,
            Action::Trace { value, .. } => CAct::Trace(self.expr(a, "value", value)?),
            Action::Break { .. } => CAct::Break,
            Action::Code { .. } => return Ok(None),
        }))
    }

    fn assign(
        &mut self,
        a: &Action,
        property: &str,
        value: &str,
        kind: AssignKind,
        key: &str,
        line: u32,
    ) -> Result<CAct, TransformError> {
        let property = property.trim();
        let dest = if property.starts_with("target.{") {
            let (_, p) = self
                .root_path(property)
                .map_err(|m| self.err(a, format!("property {property:?}: {m}")))?;
            Dest::Path(p)
        } else if !property.contains('.') && !property.is_empty() {
            Dest::Var(self.var(property))
        } else {
            return Err(self.err(a, format!("property {property:?}: hie assigns target.{{..}} paths and temporary variables only (not object properties)")));
        };
        let whole = |p: &DPath| p.field.is_none();
        let value_text = value.trim();
        let value = match (&dest, self.root_path(value_text)) {
            (Dest::Path(d), Ok((Root::Source, s)))
                if whole(d)
                    && whole(&s)
                    && value_text.starts_with("source.{")
                    && !value_text[8..].contains('{') =>
            {
                CValue::Segments(s)
            }
            _ if kind == AssignKind::Clear || kind == AssignKind::Remove => CValue::Expr(CExpr {
                expr: Expr::Lit(Box::new([])),
                fills: Vec::new(),
            }),
            _ => CValue::Expr(self.expr(a, "value", value)?),
        };
        let key = if kind == AssignKind::Insert {
            if key.trim().is_empty() {
                return Err(self.err(
                    a,
                    "action=\"insert\" needs a key (the instance to insert before)".into(),
                ));
            }
            Some(self.expr(a, "key", key)?)
        } else {
            None
        };
        if matches!(dest, Dest::Var(_)) && kind != AssignKind::Set {
            return Err(self.err(
                a,
                format!("action={kind:?} on a temporary variable: hie sets variables only"),
            ));
        }
        Ok(CAct::Assign {
            dest,
            kind,
            value,
            key,
            line,
        })
    }

    fn subtransform(
        &mut self,
        a: &Action,
        class: &str,
        source_obj: &str,
        target_obj: &str,
        _line: u32,
    ) -> Result<CAct, TransformError> {
        if target_obj.trim() != "target" {
            return Err(self.err(a, format!("targetObj={target_obj:?}: hie runs subtransforms whose target is the whole target message")));
        }
        let from_target = match source_obj.trim() {
            "source" => false,
            "target" => true,
            other => {
                return Err(self.err(
                    a,
                    format!("sourceObj={other:?}: hie runs subtransforms of source or target"),
                ));
            }
        };
        if self.depth >= SUBTRANSFORM_DEPTH_MAX {
            return Err(self.err(a, format!("subtransforms nest deeper than {SUBTRANSFORM_DEPTH_MAX} (a class that calls itself?)")));
        }
        let Some((file, sub)) = (self.env.find)(class) else {
            return Err(self.err(a, format!("no DTL class {class} to run as a subtransform")));
        };
        let compiled = compile_at(&sub, &file, self.env, self.depth + 1)?;
        Ok(CAct::Sub {
            transform: Box::new(compiled),
            from_target,
            line: a.line(),
        })
    }
}

/// The `ROOT.{inner}` paths an expression names, as written (strings skipped).
pub fn path_refs(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' && b.get(i + 1) == Some(&b'"') {
                        i += 2;
                    } else if b[i] == b'"' {
                        break;
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'.' if b.get(i + 1) == Some(&b'{') => {
                let mut start = i;
                while start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'%') {
                    start -= 1;
                }
                let Some(close) = text[i..].find('}') else {
                    return out;
                };
                if start < i {
                    let r = text[start..i + close + 1].to_owned();
                    if !out.contains(&r) {
                        out.push(r);
                    }
                }
                i += close + 1;
            }
            _ => i += 1,
        }
    }
    out
}
