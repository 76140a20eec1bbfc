-- Issue #20: a batch prints one letter per recipient and document. A letter
-- that repeats one printed in the same batch or in an earlier one (the DPI
-- sent the document again and listed the recipient anew) is not printed: it
-- is recorded with the batch, no pages, duplicate_of naming the letter
-- printed for it (position is that letter's in the batch, 0 when it is in an
-- earlier batch), and its delivery is cancelled.
ALTER TABLE paper_batch_letters
    ADD COLUMN duplicate_of bigint REFERENCES deliveries (id);
