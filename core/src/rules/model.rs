//! The rule model as IRIS writes it in `XData RuleDefinition` (and as hie's TOML form
//! writes it): a rule definition holds rule sets, the one in force runs; a rule set holds
//! rules in order; a rule has constraints, `when` blocks in order and an `otherwise`; a
//! block holds actions. The model keeps expressions as text, with the line each came from:
//! [`super::compile`] turns them into code and names that line when one does not compile.
//!
//! Actions placed directly under a rule set (IRIS allows `<send>` there) become an unnamed
//! rule with no constraints and no `when`, whose `otherwise` holds them: that is how IRIS
//! runs them (always, in their place among the rules).

/// One rule class: `Class X Extends Ens.Rule.Definition` with its `XData RuleDefinition`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleClass {
    /// The class name, e.g. `Demo.HL7.MsgRouter.ABCRoutingRule`.
    pub name: String,
    /// The `ruleDefinition` element's `context` (the router class it runs in).
    pub context: String,
    /// The `production` attribute, recorded only.
    pub production: String,
    /// Line of the `ruleDefinition` element.
    pub line: u32,
    /// Its rule sets, in file order.
    pub rule_sets: Vec<RuleSet>,
}

/// One `ruleSet`: the rules in force between `effectiveBegin` and `effectiveEnd`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    pub name: String,
    /// `effectiveBegin` as written (`YYYY-MM-DDTHH:MM:SS`, a prefix of it, or empty).
    pub effective_begin: String,
    /// `effectiveEnd` as written.
    pub effective_end: String,
    pub line: u32,
    pub rules: Vec<Rule>,
}

/// One `rule`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    /// The name as written (may be empty: IRIS then names it by position, `rule#N`).
    pub name: String,
    /// `disabled="true"`: the rule is skipped.
    pub disabled: bool,
    pub line: u32,
    pub constraints: Vec<Constraint>,
    pub whens: Vec<When>,
    /// Actions when no `when` is true (with no `when` at all: always).
    pub otherwise: Option<Vec<Action>>,
}

/// Which message property a constraint tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// The sending item's name.
    Source,
    /// The message class (`EnsLib.HL7.Message` for every HL7 message hie routes).
    MsgClass,
    /// The schema category of the message's DocType (e.g. `2.3.1`).
    DocCategory,
    /// The message type and trigger (`ADT_A08`), IRIS's `Name`.
    DocName,
    /// The message structure (`ADT_A01`), the name part of IRIS's `DocType`.
    DocType,
}

impl ConstraintKind {
    /// The kind named `name` as IRIS writes it.
    pub fn parse(name: &str) -> Option<ConstraintKind> {
        Some(match name {
            "source" => ConstraintKind::Source,
            "msgClass" => ConstraintKind::MsgClass,
            "docCategory" => ConstraintKind::DocCategory,
            "docName" => ConstraintKind::DocName,
            "docType" => ConstraintKind::DocType,
            _ => return None,
        })
    }

    /// The IRIS name.
    pub fn name(self) -> &'static str {
        match self {
            ConstraintKind::Source => "source",
            ConstraintKind::MsgClass => "msgClass",
            ConstraintKind::DocCategory => "docCategory",
            ConstraintKind::DocName => "docName",
            ConstraintKind::DocType => "docType",
        }
    }
}

/// One `constraint`: the message's property must be one of `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub kind: ConstraintKind,
    /// The comma list, split and trimmed (empty items dropped).
    pub values: Vec<String>,
    pub line: u32,
}

/// One `when`: actions run when `condition` is true.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    pub condition: String,
    pub line: u32,
    pub actions: Vec<Action>,
}

/// One action of a `when`, an `otherwise` or a rule set.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `<send target="A,B" transform="T"/>`: the message goes to each target.
    Send {
        targets: Vec<String>,
        /// The transform (DTL) class, empty for none.
        transform: String,
        line: u32,
    },
    /// `<return/>`: stop evaluating.
    Return { line: u32 },
    /// `<assign property="p" value="expr"/>`: a variable later expressions read.
    Assign {
        property: String,
        value: String,
        line: u32,
    },
    /// `<trace value="expr"/>`: a line in the evaluation's trace.
    Trace { value: String, line: u32 },
    /// `<debug value="expr"/>`: as trace (IRIS writes it to the rule log).
    Debug { value: String, line: u32 },
    /// `<delete/>`: the message is deleted (no route, recorded as such).
    Delete { line: u32 },
    /// `<foreach propertypath="HL7.{OBX()}">`: the rules inside run once per segment.
    Foreach {
        property_path: String,
        rules: Vec<Rule>,
        line: u32,
    },
}

impl Action {
    /// The line the action was written on.
    pub fn line(&self) -> u32 {
        match self {
            Action::Send { line, .. }
            | Action::Return { line }
            | Action::Assign { line, .. }
            | Action::Trace { line, .. }
            | Action::Debug { line, .. }
            | Action::Delete { line }
            | Action::Foreach { line, .. } => *line,
        }
    }
}

/// Splits an IRIS comma list, trimming items and dropping empty ones.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
