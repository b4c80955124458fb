"""The shared core every stage imports: params loading (config), files (io, paths), logging (logs), the user
error (errors) and option tables (options). Torch-, sklearn- and arch-free, so that a change elsewhere reruns
no stage through it; a change here reruns them all."""
