//! kler-sim
