//! The native TOML form of a DTL class: the same model as IRIS's XML, read with serde.
//!
//! ```text
//! transform = "Trust.ADT.Fix"                    required: the class name
//! source_class, target_class                     default EnsLib.HL7.Message
//! source_doc_type = "2.5:ADT_A01"                optional, as target_doc_type
//! create = "copy"                                new (default), copy, existing
//! generate_empty_segments = false
//! actions = [
//!   { assign = "target.{PID:5.1}", value = '"DOE"', action = "set", key = "" },
//!   { if = 'source.{PV1:2}="E"', true = [..], false = [..] },
//!   { foreach = "source.{OBX()}", key = "k1", actions = [..] },
//!   { switch = [{ case = "cond", actions = [..] }], default = [..] },
//!   { subtransform = "Other.Class", source_obj = "source", target_obj = "target" },
//!   { trace = "expr" }, { break = true }, { group = [..] }, { code = "..." }, { sql = ".." },
//! ]
//! ```
//! Unknown keys are errors. Lines are the TOML file's.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::TransformError;
use super::model::{Action, AssignKind, Create, Transform};
use crate::config::iris::Lines;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Form {
    transform: Spanned<String>,
    #[serde(default)]
    source_class: Option<String>,
    #[serde(default)]
    target_class: Option<String>,
    #[serde(default)]
    source_doc_type: String,
    #[serde(default)]
    target_doc_type: String,
    #[serde(default)]
    create: String,
    #[serde(default)]
    generate_empty_segments: bool,
    #[serde(default)]
    actions: Vec<Spanned<ActionForm>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionForm {
    assign: Option<String>,
    value: Option<String>,
    action: Option<String>,
    key: Option<String>,
    #[serde(rename = "if")]
    if_: Option<String>,
    #[serde(rename = "true")]
    then: Option<Vec<Spanned<ActionForm>>>,
    #[serde(rename = "false")]
    otherwise: Option<Vec<Spanned<ActionForm>>>,
    foreach: Option<String>,
    actions: Option<Vec<Spanned<ActionForm>>>,
    switch: Option<Vec<Spanned<ActionForm>>>,
    case: Option<String>,
    default: Option<Vec<Spanned<ActionForm>>>,
    subtransform: Option<String>,
    source_obj: Option<String>,
    target_obj: Option<String>,
    trace: Option<String>,
    #[serde(rename = "break")]
    brk: Option<bool>,
    group: Option<Vec<Spanned<ActionForm>>>,
    code: Option<String>,
    sql: Option<String>,
}

/// Reads a DTL class in hie's TOML form.
pub fn read_toml(text: &str, file: &Path) -> Result<Transform, TransformError> {
    let lines = Lines::new(text, 1);
    let err = |line: u32, class: Option<String>, message: String| TransformError {
        file: file.to_path_buf(),
        line,
        class,
        action: None,
        message,
    };
    let form: Form = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| lines.line(s.start as u64));
        err(line, None, e.message().to_owned())
    })?;
    let name = form.transform.get_ref().clone();
    let line = lines.line(form.transform.span().start as u64);
    let create = Create::parse(&form.create).ok_or_else(|| {
        err(
            line,
            Some(name.clone()),
            format!("create={:?} is none of new, copy, existing", form.create),
        )
    })?;
    let hl7 = || super::compile::HL7_CLASS.to_owned();
    let conv = Conv {
        lines: &lines,
        file,
        class: &name,
    };
    Ok(Transform {
        actions: conv.actions(&form.actions)?,
        name: name.clone(),
        source_class: form.source_class.unwrap_or_else(hl7),
        target_class: form.target_class.unwrap_or_else(hl7),
        source_doc_type: form.source_doc_type,
        target_doc_type: form.target_doc_type,
        create,
        generate_empty_segments: form.generate_empty_segments,
        line,
    })
}

struct Conv<'a> {
    lines: &'a Lines,
    file: &'a Path,
    class: &'a str,
}

impl Conv<'_> {
    fn actions(&self, forms: &[Spanned<ActionForm>]) -> Result<Vec<Action>, TransformError> {
        forms.iter().map(|f| self.action(f)).collect()
    }

    fn list(
        &self,
        forms: &Option<Vec<Spanned<ActionForm>>>,
    ) -> Result<Vec<Action>, TransformError> {
        forms.as_deref().map_or(Ok(Vec::new()), |f| self.actions(f))
    }

    fn action(&self, f: &Spanned<ActionForm>) -> Result<Action, TransformError> {
        let line = self.lines.line(f.span().start as u64);
        let a = f.get_ref();
        let err = |message: String| TransformError {
            file: self.file.to_path_buf(),
            line,
            class: Some(self.class.to_owned()),
            action: None,
            message,
        };
        if let Some(property) = &a.assign {
            let kind = a.action.clone().unwrap_or_default();
            let kind = AssignKind::parse(&kind).ok_or_else(|| {
                err(format!(
                    "action={kind:?} is none of set, clear, remove, append, insert"
                ))
            })?;
            return Ok(Action::Assign {
                property: property.clone(),
                value: a.value.clone().unwrap_or_default(),
                kind,
                key: a.key.clone().unwrap_or_default(),
                line,
            });
        }
        if let Some(condition) = &a.if_ {
            return Ok(Action::If {
                condition: condition.clone(),
                then: self.list(&a.then)?,
                otherwise: self.list(&a.otherwise)?,
                line,
            });
        }
        if let Some(property) = &a.foreach {
            return Ok(Action::Foreach {
                property: property.clone(),
                key: a
                    .key
                    .clone()
                    .ok_or_else(|| err("a foreach needs key".into()))?,
                actions: self.list(&a.actions)?,
                line,
            });
        }
        if let Some(cases) = &a.switch {
            let mut out = Vec::new();
            for c in cases {
                let cl = self.lines.line(c.span().start as u64);
                let cond = c
                    .get_ref()
                    .case
                    .clone()
                    .ok_or_else(|| err("a switch entry needs case".into()))?;
                out.push((cond, cl, self.list(&c.get_ref().actions)?));
            }
            return Ok(Action::Switch {
                cases: out,
                default: self.list(&a.default)?,
                line,
            });
        }
        if let Some(class) = &a.subtransform {
            return Ok(Action::Subtransform {
                class: class.clone(),
                source_obj: a.source_obj.clone().unwrap_or_else(|| "source".into()),
                target_obj: a.target_obj.clone().unwrap_or_else(|| "target".into()),
                line,
            });
        }
        if let Some(value) = &a.trace {
            return Ok(Action::Trace {
                value: value.clone(),
                line,
            });
        }
        if a.brk == Some(true) {
            return Ok(Action::Break { line });
        }
        if a.group.is_some() {
            return Ok(Action::Group {
                actions: self.list(&a.group)?,
                line,
            });
        }
        if a.code.is_some() || a.sql.is_some() {
            return Ok(Action::Code {
                sql: a.sql.is_some(),
                line,
            });
        }
        Err(err("an action is one of assign, if, foreach, switch, subtransform, trace, break, group, code, sql".into()))
    }
}
