"""The relay core: the hub that routes the replication stream to the clients it is for
(``hub``, ``mirror``), each client's session and its bounded outbox (``session``, ``outbox``,
``ratelimit``), and the task that keeps the stream flowing into the hub (``replication``)."""
