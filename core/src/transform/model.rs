//! The DTL model as IRIS writes it in `XData DTL` (and as hie's TOML form writes it): a
//! transform names its source and target classes and doc types, how the target starts
//! (`create`), and holds actions in order. Expressions and paths stay text here, with the
//! line each came from: [`super::compile`] turns them into code and names that line when
//! one does not compile.

/// One DTL class: `Class X Extends Ens.DataTransformDTL` with its `XData DTL`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transform {
    /// The class name, e.g. `Demo.HL7.MsgRouter.ADTLastNameTransform`.
    pub name: String,
    pub source_class: String,
    pub target_class: String,
    /// `Category:Structure` (e.g. `2.3.1:ADT_A01`), or empty.
    pub source_doc_type: String,
    pub target_doc_type: String,
    pub create: Create,
    /// Class parameter `GENERATEEMPTYSEGMENTS` (an empty value assigned to a whole
    /// segment the target lacks creates the bare segment when set).
    pub generate_empty_segments: bool,
    /// Line of the `transform` element.
    pub line: u32,
    pub actions: Vec<Action>,
}

/// How the target starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Create {
    /// An empty message.
    #[default]
    New,
    /// A copy of the source.
    Copy,
    /// The object passed in as target (hie's callers pass none: refused at load).
    Existing,
}

impl Create {
    /// The value of the `create` attribute.
    pub fn parse(text: &str) -> Option<Create> {
        Some(match text {
            "" | "new" => Create::New,
            "copy" => Create::Copy,
            "existing" => Create::Existing,
            _ => return None,
        })
    }
}

/// What an `assign` does with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignKind {
    Set,
    Clear,
    Remove,
    Append,
    Insert,
}

impl AssignKind {
    /// The value of the `action` attribute.
    pub fn parse(text: &str) -> Option<AssignKind> {
        Some(match text {
            "" | "set" => AssignKind::Set,
            "clear" => AssignKind::Clear,
            "remove" => AssignKind::Remove,
            "append" => AssignKind::Append,
            "insert" => AssignKind::Insert,
            _ => return None,
        })
    }
}

/// One action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `<assign property value action [key]>`.
    Assign {
        property: String,
        value: String,
        kind: AssignKind,
        key: String,
        line: u32,
    },
    /// `<if condition><true>..</true><false>..</false></if>`.
    If {
        condition: String,
        then: Vec<Action>,
        otherwise: Vec<Action>,
        line: u32,
    },
    /// `<foreach property key>`: the actions run once per instance, `key` = 1, 2, ...
    Foreach {
        property: String,
        key: String,
        actions: Vec<Action>,
        line: u32,
    },
    /// `<switch><case condition>..</case><default>..</default></switch>`: the first
    /// true case runs, else the default.
    Switch {
        cases: Vec<(String, u32, Vec<Action>)>,
        default: Vec<Action>,
        line: u32,
    },
    /// `<subtransform class sourceObj targetObj>`.
    Subtransform {
        class: String,
        source_obj: String,
        target_obj: String,
        line: u32,
    },
    /// `<trace value>`: a line in the transform's trace.
    Trace { value: String, line: u32 },
    /// `<break/>`: leaves the innermost `foreach`.
    Break { line: u32 },
    /// `<group>`: its actions, in order.
    Group { actions: Vec<Action>, line: u32 },
    /// `<code>` or `<sql>`: ObjectScript hie cannot run (`sql` true for `<sql>`).
    Code { sql: bool, line: u32 },
}

impl Action {
    /// The element name, for errors.
    pub fn element(&self) -> &'static str {
        match self {
            Action::Assign { .. } => "assign",
            Action::If { .. } => "if",
            Action::Foreach { .. } => "foreach",
            Action::Switch { .. } => "switch",
            Action::Subtransform { .. } => "subtransform",
            Action::Trace { .. } => "trace",
            Action::Break { .. } => "break",
            Action::Group { .. } => "group",
            Action::Code { sql: false, .. } => "code",
            Action::Code { sql: true, .. } => "sql",
        }
    }

    /// The line the action was written on.
    pub fn line(&self) -> u32 {
        match self {
            Action::Assign { line, .. }
            | Action::If { line, .. }
            | Action::Foreach { line, .. }
            | Action::Switch { line, .. }
            | Action::Subtransform { line, .. }
            | Action::Trace { line, .. }
            | Action::Break { line }
            | Action::Group { line, .. }
            | Action::Code { line, .. } => *line,
        }
    }
}

/// Lines of the `code` and `sql` blocks of `actions`, nested ones included, in order.
pub fn code_blocks(actions: &[Action], out: &mut Vec<(&'static str, u32)>) {
    for a in actions {
        match a {
            Action::Code { line, .. } => out.push((a.element(), *line)),
            Action::If {
                then, otherwise, ..
            } => {
                code_blocks(then, out);
                code_blocks(otherwise, out);
            }
            Action::Foreach { actions, .. } | Action::Group { actions, .. } => {
                code_blocks(actions, out)
            }
            Action::Switch { cases, default, .. } => {
                for (_, _, c) in cases {
                    code_blocks(c, out);
                }
                code_blocks(default, out);
            }
            _ => {}
        }
    }
}
