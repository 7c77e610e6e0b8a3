package assess

import (
	"context"
	"time"

	"github.com/smartcalc-app/smartcalc/shared/fhir"
	"github.com/smartcalc-app/smartcalc/shared/mapping"
	"github.com/smartcalc-app/smartcalc/shared/message"
)

// Patient is the banner: who the assessment is about. It is always taken
// from the FHIR Patient, never from the launch parameters, so a mixed-up
// launch shows the wrong name rather than silently the wrong data.
type Patient struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	BirthDate string `json:"birth_date,omitempty"`
	Age       *int   `json:"age,omitempty"`
	// BirthDateProblem says why no age is shown for a birth date that
	// cannot be right (in the future, or more than 130 years ago), in the
	// reader's language; BirthDateIssue names which ("future", "too-old")
	// and MaxAge is the limit, so the page can say it again when its
	// language changes.
	BirthDateProblem message.Msg `json:"birth_date_problem,omitzero"`
	BirthDateIssue   string      `json:"birth_date_issue,omitempty"`
	MaxAge           int         `json:"max_age,omitempty"`
	Sex              string      `json:"sex,omitempty"`
	MRN              string      `json:"mrn,omitempty"`
	// Unavailable, when the Patient could not be read, says why: the
	// banner shows "Not available" with it, never "not recorded".
	Unavailable message.Msg `json:"unavailable,omitzero"`
}

// Context is GET /api/context.
type Context struct {
	Patient           *Patient    `json:"patient"`
	NeedPatientBanner bool        `json:"need_patient_banner"`
	Scope             string      `json:"scope"`
	FHIRUser          string      `json:"fhir_user,omitempty"`
	StyleURL          string      `json:"smart_style_url,omitempty"`
	Tenant            string      `json:"tenant,omitempty"`
	Encounter         string      `json:"encounter,omitempty"`
	ExpiresAt         time.Time   `json:"expires_at"`
	DataErrors        []DataError `json:"data_errors"`
}

// Context reads the session's Patient (one FHIR read) for the banner.
func (s *Service) Context(ctx context.Context, ss *Session) (*Context, error) {
	st := ss.Store()
	c := &Context{
		NeedPatientBanner: st.NeedPatientBanner,
		Scope:             st.Scope,
		FHIRUser:          st.FHIRUser,
		StyleURL:          st.SmartStyleURL,
		Tenant:            st.Tenant,
		Encounter:         st.Encounter,
		ExpiresAt:         st.ExpiresAt,
		DataErrors:        []DataError{},
	}
	if !Allows(st.Scope, "Patient", fhir.InteractionRead) {
		de := scopeError("Patient", fhir.InteractionRead)
		c.Patient = &Patient{ID: st.Patient, Unavailable: de.Message}
		c.DataErrors = append(c.DataErrors, de)
		return c, nil
	}
	var p fhir.Patient
	if err := ss.FHIR().Read(ctx, "Patient", st.Patient, &p); err != nil {
		if de, ok := dataError("Patient", fhir.InteractionRead, err); ok {
			if de.Kind == KindUnauthorized {
				return nil, de.sessionError()
			}
			c.Patient = &Patient{ID: st.Patient, Unavailable: de.Message}
			c.DataErrors = append(c.DataErrors, de)
			return c, nil
		}
		return nil, err
	}
	c.Patient = banner(&p, s.now())
	return c, nil
}

func banner(p *fhir.Patient, now time.Time) *Patient {
	b := &Patient{ID: p.ID, Name: p.DisplayName(), BirthDate: p.BirthDate, MRN: p.MRN()}
	switch p.Gender {
	case "male", "female":
		b.Sex = p.Gender
	default:
		switch p.BirthSex() {
		case "M":
			b.Sex = "male"
		case "F":
			b.Sex = "female"
		default:
			b.Sex = p.Gender
		}
	}
	start, end, ok := mapping.BirthSpan(p.BirthDate)
	if !ok {
		return b
	}
	if issue := mapping.BirthDateIssue(start, end, now); issue != "" {
		key := "patient.birth_date_future"
		if issue == mapping.BirthDateTooOld {
			key = "patient.birth_date_too_old"
		}
		b.BirthDateProblem = message.New(key, message.Args{"date": p.BirthDate, "max": mapping.MaxAge})
		b.BirthDateIssue = issue
		b.MaxAge = mapping.MaxAge
		return b
	}
	if birth, ok := p.Birth(); ok && len(p.BirthDate) >= len("2006-01-02") {
		age := mapping.WholeYears(birth, now)
		b.Age = &age
	}
	return b
}
