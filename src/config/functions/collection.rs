//! Collection functions on lists, maps and sets: `concat`, `lookup`,
//! `merge`, `flatten`, `slice`, `zipmap`, the `set*` functions and friends.

use super::*;

pub(super) fn alltrue(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let mut all = true;
    for (j, v) in l.iter().enumerate() {
        // A null element is not true.
        all &= !v.is_null() && to_bool(v, &elem_name(j, 0))?;
    }
    Ok(Value::Bool(all))
}

pub(super) fn anytrue(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let mut any = false;
    for (j, v) in l.iter().enumerate() {
        any |= !v.is_null() && to_bool(v, &elem_name(j, 0))?;
    }
    Ok(Value::Bool(any))
}

pub(super) fn chunklist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let size = a.int(1)?;
    if size < 0 {
        return Err(format!(
            "the chunk size must not be negative, got {}",
            qn(size)
        ));
    }
    if l.is_empty() {
        return Ok(Value::List(Vec::new()));
    }
    // Terraform: size 0 means one chunk holding everything.
    if size == 0 {
        return Ok(Value::List(vec![Value::List(l.to_vec())]));
    }
    Ok(Value::List(
        l.chunks(size as usize)
            .map(|c| Value::List(c.to_vec()))
            .collect(),
    ))
}

pub(super) fn coalesce(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let found =
        a.0.iter()
            .find(|v| !matches!(v, Value::Null) && v.as_str() != Some(""));
    let Some(v) = found else {
        return Err("all arguments are null or empty strings".into());
    };
    // Terraform unifies the arguments' types first: with any string among
    // them, a number or bool comes back as a string.
    let any_string = a.0.iter().any(|v| matches!(v, Value::String(_)));
    match v {
        Value::Number(_) | Value::Bool(_) if any_string => Ok(Value::String(to_string(v, "")?)),
        v => Ok(v.clone()),
    }
}

pub(super) fn coalescelist(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    for (i, v) in a.0.iter().enumerate() {
        match v {
            Value::List(l) if l.is_empty() => {}
            Value::List(_) => return Ok(v.clone()),
            other => {
                return Err(format!(
                    "{} must be a list, got {}",
                    arg_name(i),
                    type_name(other)
                ));
            }
        }
    }
    Err("all arguments are empty lists".into())
}

pub(super) fn compact(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut out = Vec::new();
    for (j, v) in a.list(0)?.iter().enumerate() {
        match v {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            v => out.push(Value::String(to_string(v, &elem_name(j, 0))?)),
        }
    }
    Ok(Value::List(out))
}

pub(super) fn concat(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut out = Vec::new();
    for i in 0..a.len() {
        if let Value::Set(_) = a.arg(i) {
            return Err(format!(
                "all arguments must be lists or tuples; {} is a set",
                arg_name(i)
            ));
        }
        out.extend_from_slice(a.list(i)?);
    }
    Ok(Value::List(out))
}

pub(super) fn contains(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let needle = a.arg(1);
    if needle.is_null() {
        return Err("argument 2 must not be null".into());
    }
    Ok(Value::Bool(a.list(0)?.iter().any(|v| loose_eq(v, needle))))
}

pub(super) fn distinct(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut seen = HashSet::new();
    // The argument is a list: a tuple's elements unify first, so
    // `distinct([1, "1"])` is `["1"]`.
    let list = Type::List(Box::new(Type::Any)).convert(Value::List(a.list(0)?.to_vec()))?;
    Ok(Value::List(
        list.as_list()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|v| seen.insert(canon(v)))
            .cloned()
            .collect(),
    ))
}

pub(super) fn element(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let l = a.list(0)?;
    let index = a.int(1)?;
    if l.is_empty() {
        return Err("cannot take an element of an empty list".into());
    }
    if index < 0 {
        return Err(format!("the index must not be negative, got {}", qn(index)));
    }
    Ok(l[index as usize % l.len()].clone())
}

pub(super) fn flatten(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    fn walk(l: &[Value], out: &mut Vec<Value>) {
        for v in l {
            match v {
                Value::List(inner) | Value::Set(inner) => walk(inner, out),
                v => out.push(v.clone()),
            }
        }
    }
    let mut out = Vec::new();
    walk(a.list(0)?, &mut out);
    Ok(Value::List(out))
}

pub(super) fn index(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let needle = a.arg(1);
    match a.list(0)?.iter().position(|v| loose_eq(v, needle)) {
        Some(i) => Ok(Value::Number(i as f64)),
        None => Err(format!("item {} not found", qv(needle))),
    }
}

pub(super) fn keys(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::List(
        a.map(0)?.keys().map(|k| Value::str(k.as_str())).collect(),
    ))
}

pub(super) fn values(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::List(a.map(0)?.values().cloned().collect()))
}

pub(super) fn length(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let n = match a.arg(0) {
        Value::String(s) => {
            use unicode_segmentation::UnicodeSegmentation as _;
            s.graphemes(true).count()
        }
        Value::List(l) | Value::Set(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Null => return Err("argument 1 must not be null".into()),
        other => {
            return Err(format!(
                "argument 1 must be a string, list or map, got {}",
                type_name(other)
            ));
        }
    };
    Ok(Value::Number(n as f64))
}

pub(super) fn lookup(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let key = a.string(1)?;
    if let Some(v) = a.map(0)?.get(&key) {
        return Ok(v.clone());
    }
    if a.len() == 3 {
        return Ok(a.take(2));
    }
    Err(format!("key {} not found and no default given", q(&key)))
}

pub(super) fn merge(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut out = Map::new();
    for i in 0..a.len() {
        match a.take(i) {
            Value::Null => {}
            Value::Map(m) => out.extend(m),
            other => {
                return Err(format!(
                    "{} must be a map, got {}",
                    arg_name(i),
                    type_name(&other)
                ));
            }
        }
    }
    Ok(Value::Map(out))
}

pub(super) fn one(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    match a.list(0)? {
        [] => Ok(Value::Null),
        [v] => Ok(v.clone()),
        l => Err(format!(
            "the list must have at most one element, got {}",
            l.len()
        )),
    }
}

pub(super) fn reverse(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    Ok(Value::List(a.list(0)?.iter().rev().cloned().collect()))
}

pub(super) fn slice(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    if let Value::Set(_) = a.arg(0) {
        return Err(
            "cannot slice a set: its elements have no indexes; convert it with tolist() first"
                .into(),
        );
    }
    let l = a.list(0)?;
    let (start, end) = (a.int(1)?, a.int(2)?);
    if start < 0 {
        return Err(format!(
            "the start index must not be negative, got {}",
            qn(start)
        ));
    }
    if end as i128 > l.len() as i128 {
        return Err(format!(
            "the end index {} is beyond the end of the list (length {})",
            qn(end),
            l.len()
        ));
    }
    if start > end {
        return Err(format!(
            "the start index {} is greater than the end index {}",
            qn(start),
            qn(end)
        ));
    }
    Ok(Value::List(l[start as usize..end as usize].to_vec()))
}

pub(super) fn sort(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut items = a
        .list(0)?
        .iter()
        .enumerate()
        .map(|(j, v)| to_string(v, &elem_name(j, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    items.sort();
    Ok(Value::List(items.into_iter().map(Value::String).collect()))
}

pub(super) fn zipmap(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let keys = a.list(0)?;
    let values = a.list(1)?;
    if keys.len() != values.len() {
        return Err(format!(
            "argument 1 has {} but argument 2 has {}",
            count(keys.len(), "key"),
            count(values.len(), "value")
        ));
    }
    let mut out = Map::new();
    for (j, (k, v)) in keys.iter().zip(values).enumerate() {
        out.insert(to_string(k, &elem_name(j, 0))?, v.clone());
    }
    Ok(Value::Map(out))
}

/// A set as berth stores it: a list without duplicates, strings and numbers
/// in order, as Terraform iterates its sets.
pub(super) fn normalize_set(items: Vec<Value>) -> Vec<Value> {
    let primitive = |v: &Value| {
        matches!(
            v,
            Value::String(_) | Value::Number(_) | Value::BigNumber(_) | Value::Bool(_)
        )
    };
    let mixed_with_strings = items.iter().all(primitive)
        && items.iter().any(|v| matches!(v, Value::String(_)))
        && !items.iter().all(|v| matches!(v, Value::String(_)));
    let items: Vec<Value> = if mixed_with_strings {
        // Terraform converts a set of mixed primitives to a set of strings.
        items
            .into_iter()
            .map(|v| to_string(&v, "").map_or(v, Value::String))
            .collect()
    } else {
        items
    };
    match crate::value::set_of(items) {
        Value::Set(out) => out,
        _ => Vec::new(),
    }
}

pub(super) fn setunion(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let mut all = Vec::new();
    for i in 0..a.len() {
        all.extend_from_slice(a.list(i)?);
    }
    Ok(Value::Set(normalize_set(all)))
}

pub(super) fn setintersection(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let first = normalize_set(a.list(0)?.to_vec());
    let mut others = Vec::new();
    for i in 1..a.len() {
        others.push(
            normalize_set(a.list(i)?.to_vec())
                .iter()
                .map(canon)
                .collect::<HashSet<_>>(),
        );
    }
    Ok(Value::Set(
        first
            .into_iter()
            .filter(|v| others.iter().all(|o| o.contains(&canon(v))))
            .collect(),
    ))
}

pub(super) fn setsubtract(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let first = normalize_set(a.list(0)?.to_vec());
    let minus: HashSet<String> = normalize_set(a.list(1)?.to_vec())
        .iter()
        .map(canon)
        .collect();
    Ok(Value::Set(
        first
            .into_iter()
            .filter(|v| !minus.contains(&canon(v)))
            .collect(),
    ))
}

/// The elements of `values` whose key at the same index is in `search`.
pub(super) fn matchkeys(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let values = a.list(0)?;
    let keys = a.list(1)?;
    let search = a.list(2)?;
    if values.len() != keys.len() {
        return Err("the length of keys and values should be equal".into());
    }
    let ty = crate::config::types::unify(&[
        Type::of(&Value::List(keys.to_vec())),
        Type::of(&Value::List(search.to_vec())),
    ]);
    let elem = match ty {
        Some(Type::List(t) | Type::Set(t)) => *t,
        Some(Type::Tuple(_)) | Some(Type::Any) => Type::Any,
        _ => return Err("keys and searchset must be of the same type".into()),
    };
    let conv = |v: &Value| elem.convert(v.clone()).unwrap_or_else(|_| v.clone());
    let search: Vec<Value> = search.iter().map(conv).collect();
    Ok(Value::List(
        values
            .iter()
            .zip(keys)
            .filter(|(_, k)| {
                let k = conv(k);
                search.iter().any(|s| s.same_as(&k))
            })
            .map(|(v, _)| v.clone())
            .collect(),
    ))
}

/// Every combination of one element from each argument, as a list of
/// tuples (a set when the arguments are sets).
pub(super) fn setproduct(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    if a.len() < 2 {
        return Err("at least two arguments are required".into());
    }
    let mut all_sets = true;
    let mut lists = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        all_sets &= matches!(a.arg(i), Value::Set(_));
        lists.push(a.list(i)?.to_vec());
    }
    let mut out: Vec<Vec<Value>> = vec![vec![]];
    for l in &lists {
        let mut next = Vec::with_capacity(out.len() * l.len());
        for prefix in &out {
            for v in l {
                let mut p = prefix.clone();
                p.push(v.clone());
                next.push(p);
            }
        }
        if next.len() > MAX_RANGE {
            return Err("the product has more than a million elements".into());
        }
        out = next;
    }
    let items: Vec<Value> = out.into_iter().map(Value::List).collect();
    Ok(if all_sets {
        crate::value::set_of(items)
    } else {
        Value::List(items)
    })
}

/// Swaps keys and values of a map of lists of strings.
pub(super) fn transpose(a: &mut Args, _: &FuncContext) -> Result<Value, String> {
    let m = a.map(0)?;
    let mut out: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for (k, v) in m {
        let Some(items) = v.as_list() else {
            return Err(format!("the value of {} must be a list of strings", q(k)));
        };
        for item in items {
            let s = to_string(item, &format!("an element of {}", q(k)))?;
            out.entry(s).or_default().push(Value::String(k.clone()));
        }
    }
    Ok(Value::Map(
        out.into_iter().map(|(k, v)| (k, Value::List(v))).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::functions::test_support::*;

    #[test]
    fn lookup_merge_concat_length() {
        let m = obj([("a", s("ay")), ("b", s("bee"))]);
        assert_eq!(ok("lookup", vec![m.clone(), s("a"), s("what?")]), s("ay"));
        assert_eq!(
            ok("lookup", vec![m.clone(), s("c"), s("what?")]),
            s("what?")
        );
        assert_eq!(
            ok("lookup", vec![m.clone(), s("c"), Value::Null]),
            Value::Null
        );
        assert_eq!(
            err("lookup", vec![m.clone(), s("c")]),
            "lookup: key `c` not found and no default given"
        );
        assert_eq!(
            err("lookup", vec![ls(&["a"]), s("a")]),
            "lookup: argument 1 must be a map, got list"
        );
        assert_eq!(
            ok(
                "merge",
                vec![
                    obj([("a", s("b")), ("c", s("d"))]),
                    obj([("e", s("f")), ("c", s("z"))])
                ]
            ),
            obj([("a", s("b")), ("c", s("z")), ("e", s("f"))])
        );
        assert_eq!(ok("merge", vec![]), obj::<&str>([]));
        assert_eq!(
            ok("merge", vec![Value::Null, obj([("a", n(1.0))])]),
            obj([("a", n(1.0))])
        );
        assert_eq!(
            err("merge", vec![obj([("a", n(1.0))]), ls(&[])]),
            "merge: argument 2 must be a map, got list"
        );
        assert_eq!(
            ok("concat", vec![ls(&["a", ""]), ls(&["b", "c"])]),
            ls(&["a", "", "b", "c"])
        );
        assert_eq!(
            err("concat", vec![ls(&["a"]), s("b")]),
            "concat: argument 2 must be a list, got string"
        );
        assert_eq!(ok("length", vec![ls(&[])]), n(0.0));
        assert_eq!(ok("length", vec![ls(&["a", "b"])]), n(2.0));
        assert_eq!(ok("length", vec![s("hello")]), n(5.0));
        assert_eq!(ok("length", vec![s("🤔🤷")]), n(2.0));
        assert_eq!(ok("length", vec![obj([("a", s("b"))])]), n(1.0));
        assert_eq!(
            err("length", vec![n(5.0)]),
            "length: argument 1 must be a string, list or map, got number"
        );
        assert_eq!(
            err("length", vec![Value::Null]),
            "length: argument 1 must not be null"
        );
    }

    #[test]
    fn keys_values_element_index() {
        let m = obj([("d", n(3.0)), ("a", n(1.0)), ("c", n(2.0))]);
        assert_eq!(ok("keys", vec![m.clone()]), ls(&["a", "c", "d"]));
        assert_eq!(ok("values", vec![m]), ln(&[1.0, 2.0, 3.0]));
        assert_eq!(
            err("keys", vec![ls(&[])]),
            "keys: argument 1 must be a map, got list"
        );
        assert_eq!(ok("element", vec![ls(&["a", "b", "c"]), n(1.0)]), s("b"));
        assert_eq!(ok("element", vec![ls(&["a", "b", "c"]), n(3.0)]), s("a"));
        assert_eq!(ok("element", vec![ls(&["a", "b", "c"]), n(1e15)]), s("b"));
        assert_eq!(
            err("element", vec![ls(&[]), n(0.0)]),
            "element: cannot take an element of an empty list"
        );
        assert_eq!(
            err("element", vec![ls(&["a"]), n(-1.0)]),
            "element: the index must not be negative, got `-1`"
        );
        assert_eq!(ok("index", vec![ls(&["a", "b", "c"]), s("b")]), n(1.0));
        assert_eq!(
            err("index", vec![ln(&[1.0, 2.0]), s("2")]),
            "index: item `2` not found",
            "a numeric string is not the number"
        );
        assert_eq!(
            err("index", vec![ls(&["a"]), s("z")]),
            "index: item `z` not found"
        );
        assert_eq!(
            err("index", vec![ls(&["a"]), ln(&[1.0])]),
            "index: item `[1]` not found"
        );
    }

    #[test]
    fn coalesce_and_friends() {
        assert_eq!(ok("coalesce", vec![s("a"), s("b")]), s("a"));
        assert_eq!(ok("coalesce", vec![s(""), s("b")]), s("b"));
        assert_eq!(ok("coalesce", vec![Value::Null, n(1.0), n(2.0)]), n(1.0));
        assert_eq!(
            ok("coalesce", vec![n(1.0), s("two")]),
            s("1"),
            "mixed types unify to string"
        );
        assert_eq!(
            err("coalesce", vec![Value::Null, s("")]),
            "coalesce: all arguments are null or empty strings"
        );
        assert_eq!(
            ok("coalescelist", vec![ls(&["a", "b"]), ls(&["c", "d"])]),
            ls(&["a", "b"])
        );
        assert_eq!(
            ok("coalescelist", vec![ls(&[]), ls(&["c", "d"])]),
            ls(&["c", "d"])
        );
        assert_eq!(
            err("coalescelist", vec![ls(&[]), ls(&[])]),
            "coalescelist: all arguments are empty lists"
        );
        assert_eq!(
            err("coalescelist", vec![s("a")]),
            "coalescelist: argument 1 must be a list, got string"
        );
        assert_eq!(
            ok(
                "compact",
                vec![l(vec![s("a"), s(""), s("b"), Value::Null, s("c")])]
            ),
            ls(&["a", "b", "c"])
        );
        assert_eq!(
            err("compact", vec![l(vec![ls(&[])])]),
            "compact: element 0 of argument 1 must be a string, got list"
        );
        assert_eq!(
            ok("contains", vec![ls(&["a", "b", "c"]), s("a")]),
            Value::Bool(true)
        );
        assert_eq!(
            ok("contains", vec![ls(&["a", "b", "c"]), s("d")]),
            Value::Bool(false)
        );
        // Terraform's equality: a string never equals a number.
        assert_eq!(ok("contains", vec![ls(&["1"]), n(1.0)]), Value::Bool(false));
        assert_eq!(
            ok("contains", vec![l(vec![ls(&["x"])]), ls(&["x"])]),
            Value::Bool(true)
        );
        assert_eq!(
            err("contains", vec![s("abc"), s("a")]),
            "contains: argument 1 must be a list, got string"
        );
    }

    #[test]
    fn list_shaping_functions() {
        assert_eq!(
            ok(
                "flatten",
                vec![l(vec![ls(&["a", "b"]), ls(&[]), ls(&["c"])])]
            ),
            ls(&["a", "b", "c"])
        );
        assert_eq!(
            ok(
                "flatten",
                vec![l(vec![
                    l(vec![s("a"), l(vec![s("b")])]),
                    s("c"),
                    obj([("k", n(1.0))])
                ])]
            ),
            l(vec![s("a"), s("b"), s("c"), obj([("k", n(1.0))])])
        );
        assert_eq!(
            ok("distinct", vec![ls(&["a", "b", "a", "c", "d", "b"])]),
            ls(&["a", "b", "c", "d"])
        );
        assert_eq!(
            ok("distinct", vec![l(vec![n(1.0), n(1.0), s("1")])]),
            ls(&["1"])
        );
        assert_eq!(
            ok("sort", vec![ls(&["e", "d", "a", "x"])]),
            ls(&["a", "d", "e", "x"])
        );
        assert_eq!(
            ok("sort", vec![ln(&[10.0, 9.0])]),
            ls(&["10", "9"]),
            "sort is lexical"
        );
        assert_eq!(
            err("sort", vec![l(vec![Value::Null])]),
            "sort: element 0 of argument 1 must not be null"
        );
        assert_eq!(
            ok("reverse", vec![ln(&[1.0, 2.0, 3.0])]),
            ln(&[3.0, 2.0, 1.0])
        );
        assert_eq!(
            ok("slice", vec![ls(&["a", "b", "c", "d"]), n(1.0), n(3.0)]),
            ls(&["b", "c"])
        );
        assert_eq!(ok("slice", vec![ls(&["a"]), n(1.0), n(1.0)]), ls(&[]));
        assert_eq!(
            err("slice", vec![ls(&["a", "b"]), n(1.0), n(3.0)]),
            "slice: the end index `3` is beyond the end of the list (length 2)"
        );
        assert_eq!(
            err("slice", vec![ls(&["a", "b"]), n(2.0), n(1.0)]),
            "slice: the start index `2` is greater than the end index `1`"
        );
        assert_eq!(
            err("slice", vec![ls(&["a", "b"]), n(-1.0), n(1.0)]),
            "slice: the start index must not be negative, got `-1`"
        );
        assert_eq!(
            ok("zipmap", vec![ls(&["a", "b"]), l(vec![n(1.0), ls(&["x"])])]),
            obj([("a", n(1.0)), ("b", ls(&["x"]))])
        );
        assert_eq!(
            err("zipmap", vec![ls(&["a", "b"]), ln(&[1.0])]),
            "zipmap: argument 1 has 2 keys but argument 2 has 1 value"
        );
        assert_eq!(ok("one", vec![ls(&[])]), Value::Null);
        assert_eq!(ok("one", vec![ls(&["hello"])]), s("hello"));
        assert_eq!(
            err("one", vec![ls(&["a", "b"])]),
            "one: the list must have at most one element, got 2"
        );
        assert_eq!(
            ok("chunklist", vec![ls(&["a", "b", "c", "d", "e"]), n(2.0)]),
            l(vec![ls(&["a", "b"]), ls(&["c", "d"]), ls(&["e"])])
        );
        assert_eq!(
            ok("chunklist", vec![ls(&["a", "b"]), n(0.0)]),
            l(vec![ls(&["a", "b"])])
        );
        assert_eq!(ok("chunklist", vec![ls(&[]), n(3.0)]), l(vec![]));
        assert_eq!(
            err("chunklist", vec![ls(&["a"]), n(-1.0)]),
            "chunklist: the chunk size must not be negative, got `-1`"
        );
        assert_eq!(
            ok("alltrue", vec![l(vec![Value::Bool(true), s("true")])]),
            Value::Bool(true)
        );
        assert_eq!(ok("alltrue", vec![ls(&[])]), Value::Bool(true));
        assert_eq!(
            ok(
                "alltrue",
                vec![l(vec![Value::Bool(true), Value::Bool(false)])]
            ),
            Value::Bool(false)
        );
        assert_eq!(
            ok("anytrue", vec![l(vec![Value::Bool(false), s("true")])]),
            Value::Bool(true)
        );
        assert_eq!(ok("anytrue", vec![ls(&[])]), Value::Bool(false));
        assert_eq!(
            err("alltrue", vec![l(vec![s("yes")])]),
            "alltrue: element 0 of argument 1 must be a bool, got `yes`"
        );
    }

    #[test]
    fn set_functions() {
        let set = |v: Value| Value::Set(v.as_list().cloned().unwrap_or_default());
        assert_eq!(
            ok("toset", vec![ls(&["c", "b", "b", "a"])]),
            set(ls(&["a", "b", "c"]))
        );
        assert_eq!(
            ok("toset", vec![ln(&[10.0, 2.0, 2.0])]),
            set(ln(&[2.0, 10.0]))
        );
        assert_eq!(
            ok("toset", vec![l(vec![s("a"), n(1.0), Value::Bool(true)])]),
            set(ls(&["1", "a", "true"]))
        );
        assert_eq!(
            ok(
                "setunion",
                vec![ls(&["a", "b"]), ls(&["b", "c"]), ls(&["d"])]
            ),
            set(ls(&["a", "b", "c", "d"]))
        );
        assert_eq!(
            ok(
                "setintersection",
                vec![ls(&["a", "b"]), ls(&["b", "c"]), ls(&["b", "d"])]
            ),
            set(ls(&["b"]))
        );
        assert_eq!(
            ok("setintersection", vec![ls(&["b", "a", "a"])]),
            set(ls(&["a", "b"]))
        );
        assert_eq!(
            ok("setsubtract", vec![ls(&["a", "b", "c"]), ls(&["a", "c"])]),
            set(ls(&["b"]))
        );
        assert_eq!(
            err("setunion", vec![ls(&["a"]), s("b")]),
            "setunion: argument 2 must be a list, got string"
        );
    }
}
