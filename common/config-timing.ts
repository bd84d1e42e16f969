// Histogram buckets (seconds) for the timing of config propagation, shared by the controller's
// weft_controller_config_* and the agent's weft_config_apply_seconds so the two line up: fine below 100 ms,
// where a small change should land, and up to 10 s, where a snapshot of a big mesh may.
export const CONFIG_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
