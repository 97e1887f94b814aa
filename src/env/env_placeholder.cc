namespace sluice::env {}
