package mail

import "strings"

// Free text is full of dotted words that are not domains: file names
// (report.pdf, setup.py), sentence ends without a space ("bijgewerkt.De"),
// abbreviations. A bare name found in text is taken as a domain only when
// its last label is a known top-level domain. The list is deliberately not
// the whole root zone: it holds every country code and the generic TLDs
// that show up in threat reports. A defanged name ("evil[.]zone") was marked
// as an indicator by its sender and skips this check.

const countryTLDs = "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo " +
	"br bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz " +
	"ec ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy " +
	"hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz " +
	"la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx " +
	"my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re " +
	"ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj " +
	"tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw"

const genericTLDs = "com net org info biz name pro mobi asia tel travel jobs cat coop aero museum int gov edu mil " +
	"xyz top online site website space tech store shop club live life world today news blog cloud " +
	"digital email link click help support services solutions network systems center company group " +
	"agency zone one fun icu vip work win bid loan men date download stream review racing party trade " +
	"science cricket faith accountant webcam kim country gdn cam buzz monster rest bar best cyou sbs cfd " +
	"quest lol ink page dev app host press social media global design art ltd inc llc expert guru " +
	"academy education exchange finance financial capital fund money cash bank insurance legal law " +
	"health care clinic hospital amsterdam frl brussels berlin london paris nyc tokyo nrw bayern " +
	"vlaanderen gent wien swiss eus cymru scot africa moe ninja rocks tube run team software photos " +
	"photo pics video games game casino bet poker sex xxx porn adult sexy dating love wiki codes " +
	"computer ovh google microsoft apple amazon onion zip mov beauty hair skin makeup boutique fit " +
	"mom baby kids plus tips tools toys watch wtf xin ren wang " +
	"bond autos boats homes motorcycles yachts locker lat futbol uno eco nexus " +
	// RFC 2606 / RFC 6761 names used throughout documentation and
	// synthetic warnings.
	"example test invalid"

// ambiguousTLDs are TLDs that are also common file extensions; a bare
// "x.<tld>" with two labels is taken for a file name.
var ambiguousTLDs = map[string]bool{
	"sh": true, "py": true, "md": true, "rs": true, "pl": true, "pm": true, "ps": true, "so": true,
	"ai": true, "cc": true, "mk": true, "in": true, "ml": true, "tf": true, "zip": true, "mov": true,
	"app": true, "cs": true, "go": true, "ts": true,
}

var knownTLDs = func() map[string]bool {
	m := make(map[string]bool, 400)
	for _, t := range strings.Fields(countryTLDs + " " + genericTLDs) {
		m[t] = true
	}
	return m
}()

// plausibleDomain applies the conservative rules above to a name Infer
// already called a domain.
func plausibleDomain(name string, defanged bool) bool {
	name = strings.TrimSuffix(name, ".")
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return false
	}
	tld := name[dot+1:]
	if defanged {
		return true
	}
	if hasPrefixFold(tld, "xn--") {
		return true
	}
	// "Gateway.Een" is two sentences glued together, not a name.
	if len(tld) > 1 && 'A' <= tld[0] && tld[0] <= 'Z' && 'a' <= tld[1] && tld[1] <= 'z' {
		return false
	}
	t := strings.ToLower(tld)
	if !knownTLDs[t] {
		return false
	}
	if ambiguousTLDs[t] && strings.Count(name, ".") < 2 {
		return false
	}
	return true
}
