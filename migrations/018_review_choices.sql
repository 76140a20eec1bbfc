-- The addresses a secretary chooses among for a delivery in review (the
-- directories know several, or the DPI's differs from theirs), so that the
-- worklist offers each as a one-click choice.
ALTER TABLE deliveries ADD COLUMN choices text[] NOT NULL DEFAULT '{}';
