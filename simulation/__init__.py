"""The simulation harness: prove a blue-green swap through Nginx under load.

``scenario.run(Scenario(...))`` brings up LB + blue + green with testcontainers, puts steady
load, long requests and WebSockets through a swap, and returns every record; ``assertions``
says whether the swap was correct and why; ``report`` writes what a person reads.
"""
