//! Request and response bodies of SPEC section 4 (filled in with the simulator).
