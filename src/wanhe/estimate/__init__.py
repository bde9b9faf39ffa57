"""What a job will cost and when it will finish, before it renders (docs/estimate.md).

``costmodel`` fits a per-scene model of Cycles' render time from a few probe renders and
scales it to the whole job, with an uncertainty range; ``deadline`` simulates the job on a
farm with the real scheduling policy and finds the machines a deadline needs. Both pure; the
probe renders are made in :mod:`wanhe.runs.estimate`.
"""
