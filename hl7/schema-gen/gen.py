#!/usr/bin/env python3
"""Writes hl7/src/schema/tables.rs: HL7 v2.3 to v2.5.1 field names, data type
component names, message structures (with IRIS's group names) and trigger-event to
structure maps, for `hie_hl7::schema`.

Run by hand (never by the tests or CI); see hl7/schema-gen/README.md:

    pip download hl7apy==1.3.5 --no-deps --no-binary :all: -d /tmp/src
    tar xzf /tmp/src/hl7apy-1.3.5.tar.gz -C /tmp/src
    (cd /tmp/src && npm pack hl7-dictionary@1.0.1 && tar xzf hl7-dictionary-1.0.1.tgz)
    python3 hl7/schema-gen/gen.py /tmp/src/hl7apy-1.3.5 /tmp/src/package \
        > hl7/src/schema/tables.rs

Sources (both MIT licensed):
- hl7apy 1.3.5 (PyPI): segments, fields with long names, data types with component
  names, message structures with groups and choices, per version.
- hl7-dictionary 1.0.1 (npm): table 0354 (message structure -> trigger events) and
  the per-event message definitions, used only to map a message type and trigger
  event to its structure.
"""

import json
import os
import re
import sys

VERSIONS = [("2.3", "v2_3"), ("2.3.1", "v2_3_1"), ("2.4", "v2_4"), ("2.5", "v2_5"), ("2.5.1", "v2_5_1")]
HL7APY_VERSION = "1.3.5"
DICTIONARY_VERSION = "1.0.1"

# Node flags, as hl7/src/schema/structure.rs reads them.
KIND_SEGMENT, KIND_GROUP, KIND_CHOICE = 0, 1, 2
FLAG_REQUIRED, FLAG_REPEATING = 4, 8


def pascal(upper_snake):
    """IRIS-style property name: the element name with non-alphanumerics removed.
    hl7apy spells names in upper snake case; words are capitalised (matching is
    case-insensitive, so only readability depends on this)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", upper_snake) if w]
    out = []
    for w in words:
        out.append(w if (len(w) <= 3 and w.isupper() and w not in ("OF", "AND", "FOR", "THE", "TO", "BY", "ON", "IN", "OR")) else w.capitalize())
    return "".join(out)


def load_js_object(path):
    text = open(path, encoding="utf-8").read()
    start = text.index("{")
    end = text.rindex("}")
    return json.loads(text[start : end + 1])


class Tables:
    def __init__(self):
        self.dt_names = []  # global data type names
        self.dt_index = {}
        self.composites = []  # unique component lists: tuple((name, dt_idx), ...)
        self.composite_index = {}
        self.segments = []  # unique field lists: tuple((name, dt_idx), ...)
        self.segment_index = {}
        self.structures = []  # unique flat node lists: tuple((name, flags, end), ...)
        self.structure_index = {}

    def dt(self, name):
        if name not in self.dt_index:
            self.dt_index[name] = len(self.dt_names)
            self.dt_names.append(name)
        return self.dt_index[name]

    def intern(self, items, index, value):
        if value not in index:
            index[value] = len(items)
            items.append(value)
        return index[value]


def group_name(mod, child):
    """IRIS's name for a group or choice: its first child's name + "grp" / "union"."""
    name, ref, _card, kind = child[0], child[1], child[2], child[3]
    if kind == "SEG":
        return name
    kind_of, children = mod.GROUPS[name]
    first = group_name(mod, children[0])
    return first + ("union" if kind_of == "choice" else "grp")


def flatten(mod, children, out, warnings, sname):
    """Appends the preorder nodes of `children`; returns nothing. Each node is
    [name, flags, end] with end = index past its last descendant."""
    seen = {}
    for child in children:
        name, _ref, (lo, hi), kind = child
        flags = (FLAG_REQUIRED if lo >= 1 else 0) | (FLAG_REPEATING if hi == -1 or hi > 1 else 0)
        if kind == "SEG":
            # hl7apy's ANYHL7SEGMENT is HL7's "Hxx" (any segment); it places nothing.
            node = ["Hxx" if len(name) != 3 else name, flags | KIND_SEGMENT, 0]
            out.append(node)
            node[2] = len(out)
        else:
            kind_of, sub = mod.GROUPS[name]
            if not sub:
                warnings.append(f"{sname}: empty group {name} left out")
                continue
            iris = group_name(mod, child)
            node = [iris, flags | (KIND_CHOICE if kind_of == "choice" else KIND_GROUP), 0]
            out.append(node)
            flatten(mod, sub, out, warnings, sname)
            node[2] = len(out)
        if kind != "SEG":
            seen[node[0]] = seen.get(node[0], 0) + 1
            if seen[node[0]] > 1:
                # Two sibling groups with one first child (OMD_O03's diet and tray
                # orders): the second is numbered, ORCgrp2 (not checked against IRIS).
                node[0] += str(seen[node[0]])
                warnings.append(f"{sname}: sibling group named {node[0]}")


def signature_apy(mod, children):
    parts = []
    for name, _ref, _card, kind in children:
        if kind == "SEG":
            parts.append(name)
        else:
            kind_of, sub = mod.GROUPS[name]
            o, c = ("<", ">") if kind_of == "choice" else ("(", ")")
            parts.append(o + signature_apy(mod, sub) + c)
    return " ".join(parts)


def signature_dict(items):
    parts = []
    for it in items:
        if "children" in it:
            parts.append("(" + signature_dict(it["children"]) + ")")
        elif "compounds" in it:
            parts.append("<" + signature_dict(it["compounds"]) + ">")
        else:
            parts.append(it["name"])
    return " ".join(parts)


def version_tables(t, version, modname, dictionary_dir, table_0354, warnings):
    mod = __import__("hl7apy." + modname, fromlist=["x"])
    # Data types: every composite type's component list.
    composites = {}
    for dtname, comps in mod.DATATYPES_STRUCTS.items():
        entry = []
        for key, ref, _card, _kind in comps:
            entry.append((pascal(ref[3]), t.dt(ref[2])))
        composites[t.dt(dtname)] = t.intern(t.composites, t.composite_index, tuple(entry))
    # Segments: field list with each field's data type.
    segments = {}
    for seg, (_kind, fields) in mod.SEGMENTS.items():
        if len(seg) != 3:
            continue  # hl7apy's ANYHL7SEGMENT and similar placeholders
        entry = []
        names = [ref[3] for _key, ref, _card, _kind in fields]
        for i, (key, ref, _card, _kind) in enumerate(fields):
            name = pascal(ref[3])
            if ref[2] is None and ref[3] in names[i + 1 :]:
                # hl7apy 1.3.5 fills 2.5.1's reserved OBX-20..22 with the names of
                # OBX-23..25 and no type: those fields get no name.
                warnings.append(f"{version} {key}: untyped duplicate of a later field, left unnamed")
                name = ""
            entry.append((name, t.dt(ref[2] or "varies")))
        segments[seg] = t.intern(t.segments, t.segment_index, tuple(entry))
    # Structures.
    structures = {}
    sigs = {}
    for sname, (_kind, children) in mod.MESSAGES.items():
        nodes = [[sname, KIND_GROUP | FLAG_REQUIRED, 0]]
        flatten(mod, children, nodes, warnings, f"{version} {sname}")
        nodes[0][2] = len(nodes)
        nodes[0][0] = ""  # the root's name is the structure's
        structures[sname] = t.intern(t.structures, t.structure_index, tuple(tuple(n) for n in nodes))
        sigs[sname] = signature_apy(mod, children)
    # Trigger events -> structure.
    dict_messages = load_js_object(os.path.join(dictionary_dir, "lib", version, "messages.js"))
    by_0354 = {}
    for struct, events in table_0354.items():
        for ev in re.split(r"[,\s]+", events):
            if re.fullmatch(r"[A-Z0-9]{3}", ev):
                by_0354[f"{struct[:3]}_{ev}"] = struct
    events = {}
    unmapped = []
    for ev in sorted(set(dict_messages) | set(structures) | set(by_0354)):
        # Table 0354's structure, where this version has it (and, where hl7apy also
        # lists the event as a structure of its own, the two are the same tree:
        # 2.4's SIU_S14 is SIU_S12).
        s = by_0354.get(ev)
        if s in structures and (ev not in structures or sigs[ev] == sigs[s]):
            events[ev] = s
            continue
        if ev in structures:
            events[ev] = ev
            continue
        if ev in dict_messages:
            sig = signature_dict(dict_messages[ev]["segments"]["segments"])
            same = sorted(n for n in structures if n[:3] == ev[:3] and sigs[n] == sig)
            if same:
                events[ev] = same[0]
                continue
        if ev in dict_messages:
            unmapped.append(ev)
    if unmapped:
        warnings.append(f"{version}: no structure for {len(unmapped)} events: {' '.join(unmapped)}")
    return {"composites": composites, "segments": segments, "structures": structures, "events": events}


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def emit(t, per_version, out):
    w = out.write
    w("// @generated by hl7/schema-gen/gen.py: do not edit by hand.\n")
    w(f"// Source: hl7apy {HL7APY_VERSION} (PyPI, MIT licence, Copyright (c) 2012-2018 CRS4) for\n")
    w("// segments, fields, data types and message structures; hl7-dictionary\n")
    w(f"// {DICTIONARY_VERSION} (npm, MIT licence) table 0354 and event definitions for the\n")
    w("// trigger-event to structure maps.\n\n")
    w("//! Generated HL7 tables (see hl7/schema-gen/README.md).\n\n")
    w("use super::structure::{Node, Structure};\nuse super::{Comp, Field, Schema};\n\n")
    w(f"pub(super) const SOURCE: &str = \"hl7apy {HL7APY_VERSION}; hl7-dictionary {DICTIONARY_VERSION} (table 0354)\";\n\n")
    w("/// Data type names; a field's or component's type is an index into this.\n")
    w(f"pub(super) static DT_NAMES: [&str; {len(t.dt_names)}] = [\n")
    for i in range(0, len(t.dt_names), 12):
        w("    " + " ".join(rust_str(n) + "," for n in t.dt_names[i : i + 12]) + "\n")
    w("];\n\n")
    w("/// Component lists of composite data types, shared by the versions.\n")
    w(f"pub(super) static COMPOSITES: [&[Comp]; {len(t.composites)}] = [\n")
    for comps in t.composites:
        w("    &[" + " ".join(f"Comp({rust_str(n)}, {d})," for n, d in comps) + "],\n")
    w("];\n\n")
    w("/// Field lists of segments, shared by the versions.\n")
    w(f"pub(super) static SEGMENTS: [&[Field]; {len(t.segments)}] = [\n")
    for fields in t.segments:
        w("    &[" + " ".join(f"Field({rust_str(n)}, {d})," for n, d in fields) + "],\n")
    w("];\n\n")
    w("// Message structures as preorder node lists, shared by the versions.\n")
    for i, nodes in enumerate(t.structures):
        w(f"static S{i}: [Node; {len(nodes)}] = [" + " ".join(f"Node({rust_str(n)}, {f}, {e})," for n, f, e in nodes) + "];\n")
    w("\n")
    for version, _mod in VERSIONS:
        tv = per_version[version]
        vid = version.replace(".", "_")
        comp = [0xFFFF] * len(t.dt_names)
        for d, c in tv["composites"].items():
            comp[d] = c
        w(f"static COMPOSITES_{vid}: [u16; {len(comp)}] = [\n")
        for i in range(0, len(comp), 16):
            w("    " + " ".join(f"{c}," for c in comp[i : i + 16]) + "\n")
        w("];\n")
        segs = sorted(tv["segments"].items())
        w(f"static SEGMENTS_{vid}: [([u8; 3], u16); {len(segs)}] = [\n")
        for s, i in segs:
            w(f"    (*b\"{s}\", {i}),\n")
        w("];\n")
        structs = sorted(tv["structures"].items())
        w(f"static STRUCTURES_{vid}: [Structure; {len(structs)}] = [\n")
        for s, i in structs:
            w(f"    Structure {{ name: {rust_str(s)}, nodes: &S{i} }},\n")
        w("];\n")
        evs = sorted(tv["events"].items())
        w(f"static EVENTS_{vid}: [(&str, &str); {len(evs)}] = [\n")
        for e, s in evs:
            w(f"    ({rust_str(e)}, {rust_str(s)}),\n")
        w("];\n\n")
    w(f"pub(super) static VERSIONS: [Schema; {len(VERSIONS)}] = [\n")
    for version, _mod in VERSIONS:
        vid = version.replace(".", "_")
        w(f"    Schema {{ version: {rust_str(version)}, composites: &COMPOSITES_{vid}, segments: &SEGMENTS_{vid}, structures: &STRUCTURES_{vid}, events: &EVENTS_{vid} }},\n")
    w("];\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen.py HL7APY_SOURCE_DIR HL7_DICTIONARY_PACKAGE_DIR > tables.rs")
    apy_dir, dict_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, apy_dir)
    import hl7apy

    tables_js = load_js_object(os.path.join(dict_dir, "lib", "tables.js"))
    table_0354 = tables_js["354"]["values"]
    t = Tables()
    warnings = []
    per_version = {}
    for version, modname in VERSIONS:
        per_version[version] = version_tables(t, version, modname, dict_dir, table_0354, warnings)
    emit(t, per_version, sys.stdout)
    for w_ in warnings:
        print("warning:", w_, file=sys.stderr)
    print(
        f"{len(t.dt_names)} data type names, {len(t.composites)} composites, {len(t.segments)} segment "
        f"definitions, {len(t.structures)} structures (hl7apy {hl7apy.__version__ if hasattr(hl7apy, '__version__') else HL7APY_VERSION})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
