package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// queryPlan is SQLite's plan for query, one step a line.
func queryPlan(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	var plan strings.Builder
	err := db.queryAll(context.Background(), `EXPLAIN QUERY PLAN `+query, args, func(scan func(...any) error) error {
		var id, parent, unused int
		var detail string
		if err := scan(&id, &parent, &unused, &detail); err != nil {
			return err
		}
		plan.WriteString(detail + "\n")
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, query)
	}
	return plan.String()
}

// seedEveryTable writes a few rows in every table the audited statements read.
func seedEveryTable(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	now := db.now()
	for i, serial := range []string{"", "5CG123ABC", "", "5CG456DEF"} {
		a := &Activity{TenantID: fmt.Sprintf("t%d", i%2+1), ObjectID: "o", Action: "create-upload", Target: fmt.Sprintf("dev-%03d", i), Serial: serial, Outcome: "success"}
		if err := db.RecordActivity(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, state := range []string{"draft", "sending", "finished"} {
		if err := db.CreateImportJob(ctx, &ImportJob{TenantID: "t1", ObjectID: "o", State: state}, slices.Values(testRows(3))); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateBulkJob(ctx, &BulkJob{TenantID: "t1", ObjectID: "o", State: state, Action: BulkDelete}, bulkDevices(3)); err != nil {
			t.Fatal(err)
		}
	}
	code := newCode(t, db, "code-hash", 5, now.Add(time.Hour))
	for _, serial := range []string{"SN-A", "SN-B"} {
		if err := db.AddRegistration(ctx, submission(code, serial), received("registration-received")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := db.exec(ctx, `INSERT INTO sessions (id_hash, user_key, data, created_at, last_seen_at, absolute_expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			hashID(fmt.Sprint("session", i)), "t1:o", []byte("{}"), ms(now), ms(now), ms(now.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutFlow(ctx, FlowRecord{ID: "flow", State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := db.ClaimFormKey(ctx, "form-key", "session", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := db.TakeWriteSlots(ctx, "t1", 1, 10, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// Every statement the desk runs on a request's path or in a worker's loop reads through the
// index meant for it: no full read (SCAN) of a table that grows with use, and no sort of a
// page's rows in a temporary b-tree, unless the case says why that is fine. The query text is
// the production one. SQLite plans without statistics here, as it does in the desk, which never
// runs ANALYZE.
func TestQueriesReadThroughIndexes(t *testing.T) {
	db := openFileRig(t).db
	seedEveryTable(t, db)
	list := func(n int) []any {
		args := make([]any, n)
		for i := range args {
			args[i] = fmt.Sprint("x", i)
		}
		return args
	}
	query := func(q string, args []any, err error) (string, []any) {
		if err != nil {
			t.Fatal(err)
		}
		return q, args
	}
	type audited struct {
		name  string
		query string
		args  []any
		uses  []string // the indexes the plan must name
		// sorts and scans, when set, say why this statement may sort in a temporary b-tree, or
		// read a whole table.
		sorts, scans string
	}
	bounded := "it sorts only the rows found through its index, a handful bounded by what it looks for, not a page of a growing list"
	cases := []audited{
		{name: "activity page", uses: []string{"activity_tenant_at"}},
		{name: "activity page, what went wrong", uses: []string{"activity_tenant_trouble"}},
		{name: "activity page, by action", uses: []string{"activity_tenant_at"}},
		{name: "activity page after a cursor", uses: []string{"activity_tenant_at"}},
		{name: "activity page, newer entries", uses: []string{"activity_tenant_at"}},
		{name: "activity page, by person", uses: []string{"activity_tenant_at"}},
		{name: "a device's changes", uses: []string{"activity_tenant_target"}},
		{name: "activity page, jobs folded", uses: []string{"activity_tenant_at", "activity_tenant_job (tenant_id=? AND target=?"}},
		{name: "activity page, jobs folded, by person", uses: []string{"activity_tenant_at", "activity_tenant_job (tenant_id=? AND target=?"}},
		{name: "a job's records", uses: []string{"activity_tenant_job (tenant_id=? AND target=?)"}},
		{name: "a page's jobs counted", query: foldedJobsQuery(2), args: list(3), uses: []string{"activity_tenant_job (tenant_id=? AND target=?)"}},
		{name: "a tenant's write hold", query: writeHoldQuery, args: list(1), uses: []string{"sqlite_autoindex_write_gates_1"}},
		{name: "uploads created", query: uploadsCreated(2), args: list(3), uses: []string{"activity_tenant_object_at (tenant_id=?)"},
			scans: "read only after a create whose answer was lost; an index of its own would add a write to every create"},
		{name: "an activity", query: `SELECT ` + activityColumns + ` FROM activity WHERE tenant_id = ? AND id = ?`, args: list(2), uses: []string{"sqlite_autoindex_activity_1"}},
		{name: "a serial's activity", query: activityOfSerial, args: list(3), uses: []string{"activity_tenant_serial"}},
		{name: "recent imports' row counts", query: importRowCounts(20), args: list(20), uses: []string{"sqlite_autoindex_import_rows_1 (job_id=?)"},
			sorts: "it groups the rows of the 20 imports listed, found through their key, by verdict; counts kept on each job would add a write to every change of a row"},
		{name: "a serial's imports", query: importsOfSerial, args: list(3), uses: []string{"import_rows_serial", "sqlite_autoindex_import_jobs_1"}, sorts: bounded},
		{name: "a serial's bulk changes", query: bulkOfSerial, args: list(3), uses: []string{"bulk_devices_serial", "sqlite_autoindex_bulk_jobs_1"}, sorts: bounded},
		{name: "serials being imported", query: serialsImportingQuery(2, 3), args: list(7), uses: []string{"import_rows_serial", "sqlite_autoindex_import_jobs_1"}, sorts: bounded},
		{name: "retention: the next tenant", query: nextActivityTenant, args: list(1), uses: []string{"activity_tenant_at (tenant_id>?)"}},
		{name: "retention: a tenant's old activity", query: purgeActivityOfTenant, args: list(2), uses: []string{"activity_tenant_at (tenant_id=? AND at<?)"}},
		{name: "import jobs page", query: `SELECT ` + importJobColumns + ` FROM import_jobs ` + importJobsOfTenant, args: list(2), uses: []string{"import_jobs_tenant_created"}},
		{name: "an import job", query: `SELECT ` + importJobColumns + ` FROM import_jobs ` + jobOfTenant, args: list(2), uses: []string{"sqlite_autoindex_import_jobs_1"}},
		{name: "bulk changes running", query: `SELECT ` + bulkJobColumns + ` FROM bulk_jobs ` + bulkJobsRunning, args: list(1), uses: []string{"bulk_jobs_tenant_created"}},
		{name: "bulk changes page", query: `SELECT ` + bulkJobColumns + ` FROM bulk_jobs ` + bulkJobsFinished, args: list(2), uses: []string{"bulk_jobs_tenant_created"}},
		{name: "bulk changes page after a cursor", query: `SELECT ` + bulkJobColumns + ` FROM bulk_jobs ` + bulkJobsFinishedBefore, args: list(5), uses: []string{"bulk_jobs_tenant_created"}},
		{name: "a bulk change's devices", query: bulkDevicesOfJob, args: list(1), uses: []string{"sqlite_autoindex_bulk_devices_1"}},
		{name: "an import's batch rows", uses: []string{"sqlite_autoindex_import_rows_1 (job_id=?)"}},
		{name: "a step of a serial check", uses: []string{"sqlite_autoindex_import_rows_1 (job_id=? AND line>?)"}},
		{name: "an import's batches", query: importBatchesOfJob, args: list(1), uses: []string{"sqlite_autoindex_import_batches_1"}},
		{name: "wipe an import's hashes", query: wipeImportHashes, args: list(5), uses: []string{"sqlite_autoindex_import_rows_1", "sqlite_autoindex_import_jobs_1"}},
		{name: "claim an import job", query: claimQuery(importJobs, driverSQLite), args: list(5), uses: []string{"import_jobs_due (state=?)"}},
		{name: "claim a bulk change", query: claimQuery(bulkJobs, driverSQLite), args: list(5), uses: []string{"bulk_jobs_due (state=?)"}},
		{name: "wake a job", query: wakeQuery(importJobs), args: list(3), uses: []string{"sqlite_autoindex_import_jobs_1"}},
		{name: "stop an import's queued batches", query: stopQueuedBatches, args: list(2), uses: []string{"sqlite_autoindex_import_batches_1 (job_id=?)"}},
		{name: "stop an import's queued rows", query: stopQueuedRows, args: list(4), uses: []string{"sqlite_autoindex_import_rows_1 (job_id=?)", "sqlite_autoindex_import_batches_1 (job_id=?)"}},
		{name: "look up lost answers again", query: recheckQuery(bulkJobs), args: list(1), uses: []string{"sqlite_autoindex_bulk_devices_1 (job_id=?)"}},
		{name: "drafts to purge", query: draftsQuery(importJobs), args: list(1), uses: []string{"import_jobs_due (state=?)"}},
		{name: "a tenant's codes that take devices", query: usableCodesOfTenant, args: list(2), uses: []string{"registration_codes_tenant (tenant_id=?)"}},
		{name: "a tenant's newest codes that take no more", query: endedCodesOfTenant, args: list(4), uses: []string{"registration_codes_tenant (tenant_id=?)"}},
		{name: "a tenant's codes that take no more", query: countEndedCodesOfTenant, args: list(2), uses: []string{"registration_codes_tenant (tenant_id=?)"}},
		{name: "a tenant's code", query: registrationCodeOfTenant, args: list(2), uses: []string{"sqlite_autoindex_registration_codes_1 (id=?)"}},
		{name: "waiting devices by code", query: waitingByCode, args: list(2), uses: []string{"registration_submissions_tenant (tenant_id=? AND state=?)"},
			sorts: "it groups the devices waiting in one tenant by code: what the navigation counts, which the codes' uses and lifetimes bound"},
		{name: "registrations waiting on a page of codes", uses: []string{"registration_submissions_code (code_id=?)"}, sorts: bounded},
		{name: "a code by its hash", query: registrationCodeByHash, args: list(1), uses: []string{"registration_codes_hash"}},
		{name: "registrations waiting", uses: []string{"registration_submissions_tenant (tenant_id=? AND state=?)"}, sorts: bounded},
		{name: "registrations recently settled", uses: []string{"registration_submissions_tenant (tenant_id=? AND state=? AND received_at>?)"}, sorts: bounded},
		{name: "a code's registrations", uses: []string{"registration_submissions_code"}, sorts: bounded},
		{name: "a job's registrations", uses: []string{"registration_submissions_state (state=? AND job_id=?)"}, sorts: bounded},
		{name: "registrations by id", uses: []string{"sqlite_autoindex_registration_submissions_1"}, sorts: bounded},
		{name: "registrations' devices", query: registrationDevicesQuery(3, true), args: list(3), uses: []string{"sqlite_autoindex_registration_devices_1"}},
		{name: "devices waiting for approval", query: countWaitingDevices, args: list(2), uses: []string{"registration_submissions_tenant (tenant_id=? AND state=?)"}},
		{name: "serials waiting", query: waitingSerialsQuery(2), args: list(4), uses: []string{"registration_submissions_tenant (tenant_id=? AND state=?)"}},
		{name: "approve", query: approveSubmissions(2), args: list(9), uses: []string{"sqlite_autoindex_registration_submissions_1", "sqlite_autoindex_registration_codes_1"}},
		{name: "registrations to expire", query: dueExpiries, args: list(1), uses: []string{"registration_submissions_state (state=?)"}},
		{name: "approved jobs", query: approvedJobs, args: nil, uses: []string{"registration_submissions_state (state=?)"}},
		{name: "due syncs", query: dueSyncs, args: list(1), uses: []string{"registration_submissions_sync"}},
		{name: "claim a sync", query: claimSync, args: list(3), uses: []string{"registration_submissions_sync (state=? AND job_id=?"}},
		{name: "a sync done", query: syncDone, args: list(3), uses: []string{"registration_submissions_state (state=? AND job_id=?)"}},
		{name: "codes to purge", query: expiredCodes, args: list(1), uses: []string{"registration_submissions_code"},
			scans: "codes are made by hand, a few a day, kept 30 days past their end; the sweep runs every five minutes"},
		{name: "sweep sessions", query: sweepSessions, args: list(2), uses: []string{"sessions_last_seen", "sessions_expires"}},
		{name: "sweep flows", query: sweepFlows, args: list(1), uses: []string{"flows_created"}},
		{name: "sweep form key claims", query: sweepFormKeyClaims, args: list(1),
			scans: "the claims of the last two hours, clustered on the key; an index of their ends would add a write to every create"},
		{name: "sweep rate counters", query: sweepRateCounters, args: list(1), uses: []string{"rate_counters_end"}},
		{name: "a user's live sessions", query: liveSessionsOfUser, args: list(3), uses: []string{"sessions_user"}, sorts: bounded},
	}
	at := func(name string) *audited {
		for i := range cases {
			if cases[i].name == name {
				return &cases[i]
			}
		}
		t.Fatalf("no case %q", name)
		return nil
	}
	for name, f := range map[string]ActivityFilter{
		"activity page":                         {TenantID: "t1"},
		"activity page, what went wrong":        {TenantID: "t1", Action: "create-upload", Outcome: "failure"},
		"activity page, by action":              {TenantID: "t1", Action: "import"},
		"activity page after a cursor":          {TenantID: "t1", Before: "1767000000000_0190b1b4-0000-7000-8000-000000000000"},
		"activity page, newer entries":          {TenantID: "t1", After: "1767000000000_0190b1b4-0000-7000-8000-000000000000"},
		"activity page, by person":              {TenantID: "t1", Person: "adele"},
		"a device's changes":                    {TenantID: "t1", Device: "dev-001"},
		"activity page, jobs folded":            {TenantID: "t1", Fold: true},
		"activity page, jobs folded, by person": {TenantID: "t1", Fold: true, Person: "adele"},
		"a job's records":                       {TenantID: "t1", Job: "job-1"},
	} {
		c := at(name)
		c.query, c.args = query(activityQuery(&f))
	}
	for name, f := range map[string]SubmissionFilter{
		"registrations waiting":                    {TenantID: "t1", States: []string{SubmissionWaiting, SubmissionApproved}},
		"registrations recently settled":           {TenantID: "t1", States: []string{SubmissionFinished, SubmissionRejected, SubmissionExpired}, Since: time.Now()},
		"a code's registrations":                   {CodeID: "c"},
		"a job's registrations":                    {JobID: "j", States: []string{SubmissionApproved}},
		"registrations by id":                      {TenantID: "t1", IDs: []string{"a", "b"}},
		"registrations waiting on a page of codes": {TenantID: "t1", CodeIDs: []string{"a", "b"}, States: []string{SubmissionWaiting}},
	} {
		c := at(name)
		c.query, c.args = query(submissionsQuery(f))
	}
	c := at("an import's batch rows")
	c.query, c.args = importRowsQuery("j", RowFilter{Batch: 2, Hashes: true})
	c = at("a step of a serial check")
	c.query, c.args = importRowsQuery("j", RowFilter{Valid: true, AfterLine: 500, Limit: 100})

	materialized := regexp.MustCompile(`(?m)^MATERIALIZE (\S+)$`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := queryPlan(t, db, c.query, c.args...)
			for _, index := range c.uses {
				if !strings.Contains(plan, "INDEX "+index) {
					t.Errorf("the plan does not read through %s:\n%s", index, plan)
				}
			}
			values := map[string]bool{}
			for _, m := range materialized.FindAllStringSubmatch(plan, -1) {
				values[m[1]] = true // a list of VALUES the statement carries, not a table
			}
			for line := range strings.Lines(plan) {
				line = strings.TrimSpace(line)
				if name, ok := strings.CutPrefix(line, "SCAN "); ok && c.scans == "" {
					if first, _, _ := strings.Cut(name, " "); !values[first] && !strings.HasSuffix(line, "CONSTANT ROWS") {
						t.Errorf("the statement reads a whole table (%s):\n%s", line, plan)
					}
				}
				if strings.HasPrefix(line, "USE TEMP B-TREE") && c.sorts == "" {
					t.Errorf("the statement sorts its rows in a temporary b-tree (%s):\n%s", line, plan)
				}
			}
		})
	}
}
