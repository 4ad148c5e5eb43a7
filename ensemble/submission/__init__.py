"""The leaderboard run (run_ensemble.py, python -m ensemble run): CSV run-length codes, masks and
pictures, the output folder, the run report, label-set relabelling; with --detector, the same from
the photo parser's label maps (photo_run)."""
