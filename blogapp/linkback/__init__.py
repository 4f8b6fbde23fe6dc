"""The linkback engine: fetch, verify and receive pingbacks and trackbacks.

Plain Python, no Flask: the web layer (``blogapp.endpoints``) gives it a store that knows
the database, and a guarded fetcher. Order of work is the point of this package: every
cheap local check runs before anything is fetched from the network.
"""
