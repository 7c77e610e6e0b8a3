// Package cds is SMART Calc's CDS Hooks 2.0 service: the bleeding-risk
// assessment inside the EHR's own screens, served by the calculate function
// (README Design §5a).
//
// Three services share one assessment, the same one the app computes:
//
//   - bleeding-risk (hook patient-view): one card that gives the
//     assessment's summary as the app's page does (the verdict, why, the
//     presentation of the index PCI, the drugs in the record and the
//     guideline plan, each citation marked verified or not verified), then
//     the PRECISE-HBR category and score, the ARC-HBR criteria met, and what
//     is missing.
//   - bleeding-risk-order-select and bleeding-risk-order-sign (hooks
//     order-select and order-sign): a card only when the draft orders start
//     or continue DAPT (aspirin plus a P2Y12 inhibitor) or an oral
//     anticoagulant for a patient whose verdict is high bleeding risk or
//     undetermined, saying why, with the inputs and their dates. The
//     deprecated medication-prescribe hook is not offered.
//
// The verdict, the card's first words and its indicator follow the
// summary's one verdict (calc.Summary.HBR), never a reading of the scores
// of the cards' own: warning for high bleeding risk, info otherwise.
//
// The record comes from the request's prefetch, and what is not prefetched
// is read through fhirServer with fhirAuthorization by the app's own FHIR
// client (fhir.Client.FetchRecord, one concurrent round) and mapped by the
// app's own mapping (assess.Service.Evaluate), so a card's numbers are the
// app's numbers for the same record. The prefetch templates are built from
// the same fhir.Query the app fetches with, so templates and app agree on
// every code, with the system (http://loinc.org|718-7).
//
// Every hook call must carry the CDS client's signed JWT (RFC 7519) as a
// Bearer token: a registered issuer, aud equal to the service's URL, exp and
// iat, and a jti not seen before within its lifetime. The key comes from the
// client's registered JWK Set URL, fetched and cached; a jku header is only
// accepted when it names that same URL, so a token can never point the
// service at a key of its choosing. Anything else gets 401 and no data.
// Discovery is public: it holds no patient data.
//
// Each answer is bounded by Service.Budget (default 2 s). FHIR reads that
// have not finished by then are abandoned, and the card says what was not
// checked. A hook never answers 500: a failure becomes an info card, or no
// card for the order hooks.
//
// Choices the specification leaves open, written down here:
//
//   - No prefetch and no FHIR access: the specification allows 412; SMART
//     Calc answers 200 with a card that says what could not be assessed and
//     offers the app.
//   - A prefetch value of null means "the client has no such data": an empty
//     search result (or a missing Patient). An omitted key means "not
//     provided", and the service reads it itself when it may. An
//     OperationOutcome value means the client tried and failed: it is not
//     fetched again.
//   - CDS Hooks 2.0 prefetch tokens cannot express a date, so the
//     Observation template has no lower date bound; the mapping ignores
//     results older than the lab lookback, exactly as when the app fetches.
//   - jti replay is checked once across every instance when the service's
//     Replay is Firestore (store.ReplayCache, one Create per hook call, as
//     deployed): of any number of uses of one JWT, exactly one is accepted.
//     Without it ([MemoryReplayCache], local runs) the check is per
//     instance. A replay store that does not answer refuses the call (fail
//     closed). Tokens live at most 5 minutes (Service.MaxTokenLifetime caps
//     exp − iat and exp − now), which bounds how long an id is kept.
//   - CORS allows any origin: the services are authenticated by the JWT in
//     the Authorization header, never by cookies, so a browser-based CDS
//     client on any origin may call them.
//   - Cards carry no suggestions with actions: SMART Calc never proposes an
//     order. Guidance (the plan, and the recommendations attached to the
//     scores' categories, such as short DAPT at PRECISE-DAPT ≥25) appears in
//     the card's detail with its citation, each marked verified or not
//     verified against its source as the scoring configuration says.
//   - Feedback is recorded without PHI: service, card uuid, outcome, the
//     override reason's system and code, and the time. The clinician's free
//     text comment is never kept.
//
// Nothing here logs patient ids, names, tokens or the JWT.
package cds
