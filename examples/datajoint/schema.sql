-- Two DataJoint-2-style schemas, "ephys" and "imaging", on PostgreSQL. Both keep
-- their large objects in one shared store ("main"); some rows point at a second
-- store ("cold", an archival tier) that reclaim must not confuse with "main".
--
-- DataJoint 2 keeps a JSON document per stored attribute, e.g.
--   hash-addressed (<blob@main>, <attach@main>: content-deduplicated):
--     {"store": "main", "hash": "9f86...", "path": "_hash/ephys/9f/86/9f86...", "size": 4096}
--   path-addressed (<object@main>: a file or a directory such as a Zarr array):
--     {"store": "main", "path": "_schema/imaging/scan/scan_id=3/movie.zarr",
--      "is_dir": true, "item_count": 9, "size": 5120}
-- A directory object has a "<path>.manifest.json" sidecar next to it listing its files.
--
-- Running this file drops both schemas first: use a scratch database.

DROP SCHEMA IF EXISTS ephys CASCADE;
DROP SCHEMA IF EXISTS imaging CASCADE;
CREATE SCHEMA ephys;
CREATE SCHEMA imaging;

-- ephys ---------------------------------------------------------------------

CREATE TABLE ephys.session (
    subject      varchar(16) NOT NULL,
    session_id   integer     NOT NULL,
    session_date date        NOT NULL,
    PRIMARY KEY (subject, session_id)
);

CREATE TABLE ephys.recording (
    subject      varchar(16) NOT NULL,
    session_id   integer     NOT NULL,
    recording_id integer     NOT NULL,
    raw          jsonb       NOT NULL,  -- <blob@main> or <blob@cold>: hash-addressed
    PRIMARY KEY (subject, session_id, recording_id),
    FOREIGN KEY (subject, session_id) REFERENCES ephys.session
);

CREATE TABLE ephys.spike_sorting (
    subject      varchar(16) NOT NULL,
    session_id   integer     NOT NULL,
    recording_id integer     NOT NULL,
    paramset_id  integer     NOT NULL,
    params_file  jsonb,                 -- <attach@main>: hash-addressed, shared by equal files
    report       jsonb       NOT NULL,  -- <object@main>: one path-addressed file
    PRIMARY KEY (subject, session_id, recording_id, paramset_id),
    FOREIGN KEY (subject, session_id, recording_id) REFERENCES ephys.recording
);

-- imaging -------------------------------------------------------------------

CREATE TABLE imaging.scan (
    scan_id      integer     NOT NULL PRIMARY KEY,
    subject      varchar(16) NOT NULL,
    movie        jsonb       NOT NULL   -- <object@main>: a Zarr directory, or one TIFF file
);

CREATE TABLE imaging.segmentation (
    scan_id      integer     NOT NULL REFERENCES imaging.scan,
    method       varchar(16) NOT NULL,
    masks        json        NOT NULL,  -- <blob@main>: hash-addressed (a json, not jsonb, column)
    summary      json,                  -- <object@main>: one path-addressed file
    PRIMARY KEY (scan_id, method)
);
