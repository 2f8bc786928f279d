//! pos-agent library: terminal core, runtime, sync and backend client.
