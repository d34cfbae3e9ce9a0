"""The local dev stack: every piece mintplane runs on, as real servers on loopback (no Docker engine here).

`mintplane dev up|down|status` (behind `make up/down/status`) drives it. State lives in the git-ignored
`.dev/` folder of the checkout; `down` stops only the processes whose pid files it wrote.
"""
