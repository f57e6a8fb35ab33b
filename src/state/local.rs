//! Local state backend (to be written).
