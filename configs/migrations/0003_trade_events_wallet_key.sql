-- A trade event's `ix` counts trades within one wallet's view of a transaction, so two
-- tracked wallets trading in the same transaction both have ix 0: the key needs the wallet,
-- or the second wallet's row overwrites the first's.
ALTER TABLE trade_events DROP CONSTRAINT trade_events_pkey;
ALTER TABLE trade_events ADD CONSTRAINT trade_events_pkey PRIMARY KEY (signature, wallet, ix);
