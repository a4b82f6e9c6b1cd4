//! Retrieval evaluation: the BEIR file layout and the metrics trec_eval reports, so our
//! numbers compare with published baselines.

pub mod beir;
pub mod metrics;
