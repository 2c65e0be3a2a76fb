//! hie-net: MLLP framing, the inbound server and the outbound client.
