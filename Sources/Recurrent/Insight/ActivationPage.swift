import Foundation

/// The activation page: the text coloured per character by one unit (Karpathy's diverging
/// blue-white-red), a unit picker, top-5 next-character guesses on hover, the units that track
/// properties of the text, and the gate-saturation scatter plots.
///
/// Compact and lazy, so a 100,000-character text opens in about a second: each stored unit is
/// one base64 string of int8 values (q = round(127·v / scale); scale 1 for the tanh-bounded
/// hidden states of LSTM, GRU and rnn-tanh, the unit's largest |v| otherwise), decoded only when
/// picked; the top-5 guesses are two base64 strings (indices as bytes, or 2 bytes when V > 256;
/// probabilities as round(255·p)), decoded at the first hover. The text is laid out as plain text
/// in blocks of 1,000 characters, and a block is split into coloured characters only when it
/// scrolls near the view (IntersectionObserver), or when the page is printed. Page size ≈ 1.33·N·(units + 10) bytes + the text.
extension ActivationAnalysis {
    /// The scale of series `s`'s quantisation (values beyond it are clamped).
    func scale(of s: Int, values v: [Float]) -> Float {
        let item = series[s]
        if !item.isCell && config.cell != .rnnRelu { return 1 }
        let m = v.reduce(Float(0)) { max($0, abs($1)) }
        return m > 0 ? m : 1
    }

    /// The self-contained HTML page. `title` names the model and text in the heading.
    public func page(title: String) -> String {
        let V = config.vocabulary.count
        var seriesJSON: [String] = []
        var valueStrings: [String] = []
        for (i, s) in stored.enumerated() {
            let v = values[i]
            let scale = self.scale(of: s, values: v)
            var bytes = [UInt8](repeating: 0, count: v.count)
            for t in 0..<v.count {
                let q = max(-127, min(127, (127 * v[t] / scale).rounded()))
                bytes[t] = UInt8(bitPattern: Int8(q))
            }
            valueStrings.append("\"" + Data(bytes).base64EncodedString() + "\"")
            let item = series[s]
            let best = item.best
            seriesJSON.append("{\"l\":\(item.layer + 1),\"k\":\"\(item.isCell ? "c" : "h")\",\"u\":\(item.unit),\"scale\":\(scale),"
                              + "\"p\":\(HTMLPage.jsString(best.property.rawValue)),\"r\":\(String(format: "%.3f", best.r))}")
        }
        let wide = V > 256
        var idx = [UInt8]()
        idx.reserveCapacity(topIndices.count * (wide ? 2 : 1))
        for i in topIndices {
            if wide { idx.append(UInt8(i & 0xff)); idx.append(UInt8(i >> 8)) } else { idx.append(UInt8(i)) }
        }
        let probs = topProbabilities.map { UInt8(max(0, min(255, ($0 * 255).rounded()))) }
        let vocabJSON = "[" + config.vocabulary.characters.map { HTMLPage.jsString(String($0)) }.joined(separator: ",") + "]"
        var body = "<h1>What the model sees</h1>\n<p class=\"note\">\(HTMLPage.escape(title))</p>\n"
        body += "<div class=\"controls noprint\">Colour the text by: <label>layer <select id=\"layer\"></select></label> "
        body += "<label>state <select id=\"kind\"></select></label> <label>unit <select id=\"unit\"></select></label>"
        body += " <span class=\"note\">(\(stored.count) of \(series.count) units stored, the most interpretable first; hover a character for the model's next-character guesses)</span></div>\n"
        body += "<div class=\"legend\"><span id=\"lo\">−1</span><span class=\"bar\"></span><span id=\"hi\">+1</span>"
        body += " <span class=\"note\">blue: negative, white: 0, red: positive; <b id=\"which\"></b></span></div>\n"
        body += "<div id=\"text\" class=\"text\"></div>\n<div id=\"tip\" class=\"tip\" role=\"tooltip\"></div>\n"
        body += interpretableUnitsHTML()
        body += gateSaturationHTML()
        let script = """
        var D={n:\(characters),series:[\(seriesJSON.joined(separator: ","))],vocab:\(vocabJSON),wide:\(wide)};
        var TEXT=\(HTMLPage.jsString(String(String.UnicodeScalarView(text))));
        var VALUES=[\(valueStrings.joined(separator: ",\n"))];
        var TOP="\(Data(idx).base64EncodedString())";
        var PROB="\(Data(probs).base64EncodedString())";
        \(Self.pageScript)
        """
        return HTMLPage.render(title: "Activations: \(title)", body: body, script: script, css: Self.pageCSS, setsReadyItself: true)
    }

    func interpretableUnitsHTML() -> String {
        var h = "<h2>Units that track the text</h2>\n<p class=\"note\">Pearson's r between each unit's value and a property of the text, over all \(characters) characters. Click a row to colour the text by that unit.</p>\n"
        h += "<table id=\"best\"><tr><th>property</th><th>best unit</th><th>r</th></tr>\n"
        let storedSet = Dictionary(uniqueKeysWithValues: stored.enumerated().map { ($1, $0) })
        for (p, prop) in TextProperty.allCases.enumerated() {
            guard let s = series.indices.max(by: { abs(series[$0].correlations[p]) < abs(series[$1].correlations[p]) }) else { continue }
            let r = series[s].correlations[p]
            if r == 0 {
                h += "<tr><td>\(prop.rawValue)</td><td colspan=\"2\" class=\"note\">does not vary in this text</td></tr>\n"
                continue
            }
            let attr = storedSet[s].map { " data-s=\"\($0)\" class=\"pick\"" } ?? ""
            h += "<tr\(attr)><td>\(prop.rawValue)</td><td>\(series[s].label) tracks \(prop.rawValue)</td><td class=\"num\">\(String(format: "%+.2f", r))</td></tr>\n"
        }
        h += "</table>\n<h2>Most interpretable units</h2>\n<table id=\"ranked\"><tr><th>#</th><th>unit</th><th>tracks</th><th>r</th></tr>\n"
        for (i, s) in stored.prefix(20).enumerated() {
            let b = series[s].best
            let tracks = b.r == 0 ? "<span class=\"note\">nothing</span>" : b.property.rawValue
            h += "<tr data-s=\"\(i)\" class=\"pick\"><td class=\"num\">\(i + 1)</td><td>\(series[s].label)</td><td>\(tracks)</td><td class=\"num\">\(String(format: "%+.2f", b.r))</td></tr>\n"
        }
        return h + "</table>\n"
    }

    func gateSaturationHTML() -> String {
        var h = "<h2>Gate saturation</h2>\n"
        if gates.isEmpty {
            return h + "<p class=\"note\">An Elman RNN (\(config.cell.cliName)) has no gates.</p>\n"
        }
        h += "<p class=\"note\">As in Karpathy, Johnson and Fei-Fei (2015), fig. 3: each point is one unit's gate; x the fraction of characters on which the gate is below 0.1 (left-saturated, closed), y the fraction above 0.9 (right-saturated, open). Points near the dashed diagonal are almost always saturated one way or the other.</p>\n<div class=\"charts\">"
        let names = gates.reduce(into: [String]()) { if !$0.contains($1.gate) { $0.append($1.gate) } }
        for name in names {
            let series = gates.filter { $0.gate == name }.map { g in
                ChartSeries(name: "layer \(g.layer + 1)", points: zip(g.left, g.right).map { ($0, $1) })
            }
            h += ScatterChart(title: name, xLabel: "fraction left-saturated (< 0.1)", yLabel: "fraction right-saturated (> 0.9)", series: series).svg()
        }
        return h + "</div>\n"
    }

    static let pageCSS = """
    .text{font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all;border:1px solid #ddd;padding:.6em;max-height:70vh;overflow:auto;-webkit-print-color-adjust:exact;print-color-adjust:exact}
    .controls{margin:.5em 0}.controls select{margin-right:.6em}
    .legend{margin:.3em 0;display:flex;align-items:center;gap:.4em}.legend .bar{display:inline-block;width:180px;height:12px;border:1px solid #999;background:linear-gradient(to right,#2166ac,#fff,#b2182b);-webkit-print-color-adjust:exact;print-color-adjust:exact}
    .tip{position:fixed;display:none;background:#fff;border:1px solid #333;padding:.4em .6em;font:13px/1.4 ui-monospace,monospace;box-shadow:2px 2px 6px rgba(0,0,0,.25);pointer-events:none;z-index:10;white-space:pre}
    tr.pick{cursor:pointer}tr.pick:hover{background:#eef}tr.sel{outline:2px solid #0072B2}
    @media print{.text{max-height:none;overflow:visible;border:none}.tip{display:none!important}}
    """

    /// The page's script: reads D, TEXT, VALUES, TOP and PROB (see `page`).
    static let pageScript = """
    (function(){
    var chars=Array.from(TEXT),BLOCK=1000,box=document.getElementById('text'),blocks=[],cache={},current=0,coloured=0,visible=new Set();
    function b64(s){var bin=atob(s),a=new Uint8Array(bin.length);for(var i=0;i<bin.length;i++)a[i]=bin.charCodeAt(i);return a;}
    function vals(i){if(!cache[i])cache[i]=new Int8Array(b64(VALUES[i]).buffer);return cache[i];}
    var COL=[];for(var q=-128;q<128;q++){var v=Math.max(-1,q/127),w=Math.abs(v),t=v<0?[33,102,172]:[178,24,43];
    COL.push('rgb('+Math.round(255+(t[0]-255)*w)+','+Math.round(255+(t[1]-255)*w)+','+Math.round(255+(t[2]-255)*w)+')');}
    for(var s=0;s<chars.length;s+=BLOCK){var el=document.createElement('span');el.className='blk';el.textContent=chars.slice(s,s+BLOCK).join('');
    el._start=s;el._n=Math.min(BLOCK,chars.length-s);el._drawn=-1;box.appendChild(el);blocks.push(el);}
    function draw(el){var v=vals(current);if(el._drawn<0){var f=document.createDocumentFragment();for(var k=0;k<el._n;k++){var sp=document.createElement('span');
    sp.textContent=chars[el._start+k];f.appendChild(sp);}el.textContent='';el.appendChild(f);coloured+=el._n;}
    var c=el.childNodes;for(var k=0;k<el._n;k++)c[k].style.backgroundColor=COL[v[el._start+k]+128];el._drawn=current;}
    var io='IntersectionObserver' in window?new IntersectionObserver(function(es){es.forEach(function(e){if(e.isIntersecting){visible.add(e.target);
    if(e.target._drawn!==current)draw(e.target);}else visible.delete(e.target);});},{root:box,rootMargin:'600px'}):null;
    var L=document.getElementById('layer'),K=document.getElementById('kind'),U=document.getElementById('unit');
    function opt(sel,value,label){var o=document.createElement('option');o.value=value;o.textContent=label;sel.appendChild(o);}
    var layers=[],kinds={};D.series.forEach(function(s){if(layers.indexOf(s.l)<0)layers.push(s.l);kinds[s.k]=1;});layers.sort();
    layers.forEach(function(l){opt(L,l,String(l));});if(kinds.h)opt(K,'h','hidden h');if(kinds.c)opt(K,'c','cell c');
    function units(){U.innerHTML='';D.series.forEach(function(s,i){if(String(s.l)===L.value&&s.k===K.value)opt(U,i,s.u+' ('+s.p+', r = '+s.r.toFixed(2)+')');});}
    function select(i){current=i;var s=D.series[i];L.value=String(s.l);K.value=s.k;units();U.value=String(i);
    document.getElementById('lo').textContent=(-s.scale).toPrecision(3);document.getElementById('hi').textContent='+'+s.scale.toPrecision(3);
    document.getElementById('which').textContent='layer '+s.l+' '+(s.k==='c'?'cell':'hidden')+' unit '+s.u+': '+s.p+' (r = '+s.r.toFixed(2)+')';
    document.querySelectorAll('tr.pick').forEach(function(tr){tr.classList.toggle('sel',Number(tr.getAttribute('data-s'))===i);});
    blocks.forEach(function(b){if(b._drawn>=0&&(!io||visible.has(b)))draw(b);});}
    L.onchange=K.onchange=function(){units();if(U.options.length)select(Number(U.options[0].value));};
    U.onchange=function(){select(Number(U.value));};
    document.querySelectorAll('tr.pick').forEach(function(tr){tr.onclick=function(){select(Number(tr.getAttribute('data-s')));box.scrollIntoView();};});
    var top=null,prob=null,tip=document.getElementById('tip');
    function show(ch){return ch==='\\n'?'\\u21b5':ch===' '?'\\u2423':ch==='\\t'?'\\u21e5':ch;}
    box.addEventListener('mouseover',function(e){var sp=e.target,blk=sp.parentNode;if(!blk||blk._start===undefined)return;
    var i=blk._start+Array.prototype.indexOf.call(blk.childNodes,sp);if(!top){top=b64(TOP);prob=b64(PROB);}
    var s=D.series[current],lines=['after '+JSON.stringify(show(chars[i]))+' (character '+(i+1)+'):','unit value ≈ '+(vals(current)[i]/127*s.scale).toFixed(2)+' (stored in 8 bits: ±'+(s.scale/254).toPrecision(1)+')','next-character guesses:'];
    for(var k=0;k<5;k++){var j=D.wide?top[(i*5+k)*2]+256*top[(i*5+k)*2+1]:top[i*5+k];lines.push('  '+show(D.vocab[j])+'  ≈ '+(prob[i*5+k]/2.55).toFixed(0)+'%');}
    if(i+1<chars.length)lines.push('actual next: '+show(chars[i+1]));
    tip.textContent=lines.join('\\n');tip.style.display='block';tip.style.left=Math.min(e.clientX+14,window.innerWidth-260)+'px';tip.style.top=(e.clientY+14)+'px';});
    box.addEventListener('mouseout',function(){tip.style.display='none';});
    window.addEventListener('beforeprint',function(){blocks.forEach(function(b){if(b._drawn!==current)draw(b);});});
    select(0);
    for(var b=0;b<Math.min(3,blocks.length);b++)draw(blocks[b]);
    if(io)blocks.forEach(function(b){io.observe(b);});else blocks.forEach(draw);
    document.documentElement.setAttribute('data-load-ms',String(Math.round(performance.now())));
    if(location.hash==='#selftest'){var first=blocks.length?blocks[0].firstChild:null;
    if(first)first.dispatchEvent(new MouseEvent('mouseover',{bubbles:true,clientX:10,clientY:10}));var lines=tip.textContent.split('\\n').length;
    var t0=performance.now();select(D.series.length-1);blocks.forEach(function(b){if(b._drawn>=0&&b._drawn!==current)draw(b);});
    var switchMs=performance.now()-t0;K.onchange();L.onchange();
    document.documentElement.setAttribute('data-selftest','tooltip '+lines+' lines; selected '+current+'; unit switch '+switchMs.toFixed(1)+' ms');}
    document.documentElement.setAttribute('data-ready',coloured+' points; '+D.series.length+' units; '+chars.length+' characters');
    })();
    """
}
