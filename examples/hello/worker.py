"""A tiny worker process: does a unit of work every TICK_SECONDS, stops cleanly on SIGTERM."""
import os
import signal
import time

running = True


def stop(signum, _frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

interval = float(os.environ.get("TICK_SECONDS", "2"))
n = 0
while running:
    n += 1
    print(f"tick {n}", flush=True)
    time.sleep(interval)
print("worker stopped", flush=True)
