"""Running trials: the gateway to models, executing one trial, the local scheduler, the simulation."""
