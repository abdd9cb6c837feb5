-- Who sent each message, as the network saw it (issue 13, item 3): the source
-- address ("host:port", "[v6]:port") of the connection it came over, and the
-- subject of the verified client certificate (mutual TLS), RFC 4514. Null for
-- input that did not come over a connection (files) and for messages stored
-- before this column. Operators see both on the message (API and console); the
-- `received` / `rejected` audit events carry them too.
ALTER TABLE messages
    ADD COLUMN peer             text,
    ADD COLUMN peer_certificate text;
