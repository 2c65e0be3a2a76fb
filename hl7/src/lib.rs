//! hie-hl7: zero-copy HL7 v2. A message is its bytes plus a small index of segment
//! offsets; fields are located on demand. No I/O, no async.
