# Regenerates canon_vectors.json. Check digits come from this file's own MOD 11-2 and Luhn code,
# not from pi_match, so the vectors test the implementation rather than restate it.
import json
W=[7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2]
def chk(s17): return "10X98765432"[sum(int(c)*w for c,w in zip(s17,W))%11]
def ric(s17): return s17+chk(s17)
def luhn_ok(d):
    t=0
    for i,c in enumerate(reversed(d)):
        v=int(c)
        if i%2: v*=2; v= v-9 if v>9 else v
        t+=v
    return t%10==0
def luhn_complete(body):
    for c in "0123456789":
        if luhn_ok(body+c): return body+c
V=[]
def add(kind, inp, canon=None, reason=None, note="", versions=(1, 2)):
    # `versions`: the canonicaliser versions the vector holds for (a kind without a version 2
    # is tested at the versions it has).
    V.append({"kind":kind,"input":inp,"canonical":canon,"reason":reason,"note":note,"versions":list(versions)})
A=ric("11010519491231002"); assert A=="11010519491231002X"
add("cn_ric",A,A,None,"GB 11643-1999 annex example, check X")
add("cn_ric","11010519491231002x",A,None,"lower-case x")
add("cn_ric","11010519491231002Ｘ",A,None,"full-width X")
add("cn_ric","１１０１０５１９４９１２３１００２Ｘ",A,None,"full-width digits")
add("cn_ric","110105 19491231 002X",A,None,"spaces inside")
add("cn_ric","110105-19491231-002X",A,None,"dashes inside")
add("cn_ric","  11010519491231002X\t",A,None,"surrounding white space")
add("cn_ric","\u3000110105194912310 02X",A,None,"ideographic space")
add("cn_ric","110105491231002",A,None,"15-digit legacy number upgraded")
add("cn_ric","110105 491231 002",A,None,"15-digit legacy number with spaces")
B=ric("44030519900307123"); add("cn_ric",B,B,None,"Shenzhen, ordinary")
C=ric("81000019800101001"); add("cn_ric",C,C,None,"Hong Kong residence permit 810000")
D=ric("82000019850505002"); add("cn_ric",D,D,None,"Macau residence permit 820000")
E=ric("83000019700606003"); add("cn_ric",E,E,None,"Taiwan residence permit 830000")
F=ric("32010220000229004"); add("cn_ric",F,F,None,"29 February of a leap year (2000)")
bad=A[:17]+"1"; add("cn_ric",bad,None,"bad_checksum","wrong check character")
add("cn_ric",B[:16]+str((int(B[16])+1)%10)+B[17],None,"bad_checksum","digit typo")
add("cn_ric","1101051949123100",None,"bad_length","16 characters")
add("cn_ric","110105194912310021X",None,"bad_length","19 characters")
add("cn_ric","11010519491231002X1",None,"bad_length","19 characters after X")
add("cn_ric","1101051949X231002X",None,"bad_char","X in the body")
add("cn_ric","11010519491231002A",None,"bad_char","letter other than X")
add("cn_ric","11010519491231002X.",None,"bad_char","trailing punctuation")
add("cn_ric",ric("11010519490230002"),None,"bad_date","30 February")
add("cn_ric",ric("11010519001329002"),None,"bad_date","month 13")
add("cn_ric",ric("11010518991231002"),None,"bad_date","year before 1900 (version 1)",versions=[1])
old=ric("11010518991231002"); add("cn_ric",old,old,None,"year before 1900: GB 11643-1999 sets no lower bound",versions=[2])
older=ric("11010517800101002"); add("cn_ric",older,older,None,"born 1780, a real date",versions=[2])
add("cn_ric",ric("11010518000229002"),None,"bad_date","1800 is not a leap year",versions=[2])
add("cn_ric",ric("32010219000229004"),None,"bad_date","1900 is not a leap year")
add("cn_ric",ric("99010519491231002"),None,"bad_region","province code 99")
add("cn_ric",ric("00010519491231002"),None,"bad_region","province code 00")
add("cn_ric","1.10105E+17",None,"excel_scientific","Excel scientific notation")
add("cn_ric","1.10105e17",None,"excel_scientific","Excel scientific, lower-case e")
add("cn_ric","",None,"empty","empty")
add("cn_ric","   ",None,"empty","white space only")
add("cn_ric","-",None,"placeholder","dash placeholder")
add("cn_ric","NULL",None,"placeholder","NULL")
add("cn_ric","\\N",None,"placeholder","MySQL \\N")
add("cn_ric","无",None,"placeholder","Chinese 'none'")
add("cn_ric","-123456",None,"bad_length","zip-code-like junk")
add("cn_ric","110105491331002",None,"bad_date","15-digit with month 13")
M="+8613800138000"
add("cn_mobile","13800138000",M,None,"bare 11 digits")
add("cn_mobile","+8613800138000",M,None,"canonical")
add("cn_mobile","+86 138 0013 8000",M,None,"+86 with spaces")
add("cn_mobile","008613800138000",M,None,"0086 prefix")
add("cn_mobile","8613800138000",M,None,"86 prefix")
add("cn_mobile","138-0013-8000",M,None,"dashes")
add("cn_mobile","(138)00138000",M,None,"brackets")
add("cn_mobile","１３８００１３８０００",M,None,"full-width digits")
add("cn_mobile","+86 (138) 0013-8000",M,None,"everything at once")
add("cn_mobile","19912345678","+8619912345678",None,"199 prefix")
add("cn_mobile","1380013800",None,"bad_length","10 digits")
add("cn_mobile","138001380001",None,"bad_length","12 digits")
add("cn_mobile","12800138000",None,"bad_prefix","second digit 2")
add("cn_mobile","23800138000",None,"bad_prefix","first digit 2")
add("cn_mobile","+1 415 555 0100",None,"bad_prefix","foreign number")
add("cn_mobile","138O0138000",None,"bad_char","letter O for zero")
add("cn_mobile","1.38001E+10",None,"excel_scientific","Excel scientific")
add("cn_mobile","010-12345678",None,"bad_prefix","Beijing landline: 11 digits starting 0")
add("cn_mobile","null",None,"placeholder","lower-case null")
add("cn_mobile","",None,"empty","empty")
add("email","Zhang.San@Example.COM","zhang.san@example.com",None,"lower-cased")
add("email","  user@qq.com ","user@qq.com",None,"trimmed")
add("email","１２３４５@qq.com","12345@qq.com",None,"full-width digits (NFKC)")
add("email","ＵＳＥＲ＠１６３．ｃｏｍ","user@163.com",None,"full-width everything (NFKC)")
add("email","张三@例子.中国","张三@例子.中国",None,"internationalised")
add("email","user@foxmail.com","user@foxmail.com",None,"no provider folding")
add("email","user",None,"bad_format","no @")
add("email","a@b@c.com",None,"bad_format","two @")
add("email","@qq.com",None,"bad_format","empty local part")
add("email","user@localhost",None,"bad_format","undotted domain")
add("email","user@qq..com",None,"bad_format","empty domain label")
add("email","us er@qq.com",None,"bad_format","space inside")
add("email","-",None,"placeholder","placeholder")
card=luhn_complete("622202100112345678"); add("bank_card",card,card,None,"UnionPay 19 digits")
add("bank_card",card[:4]+" "+card[4:8]+" "+card[8:12]+" "+card[12:16]+" "+card[16:],card,None,"grouped by spaces")
add("bank_card",card[:6]+"-"+card[6:],card,None,"dash")
v=luhn_complete("41111111111"); add("bank_card",v,v,None,"12 digits")
add("bank_card","4111111111111111","4111111111111111",None,"16-digit test card")
add("bank_card","4111111111111112",None,"bad_checksum","Luhn fails")
add("bank_card","41111111111",None,"bad_length","11 digits")
add("bank_card","41111111111111111111",None,"bad_length","20 digits")
add("bank_card","4111x11111111111",None,"bad_char","letter")
add("bank_card","6.22202E+18",None,"excel_scientific","Excel scientific")
# Excel keeps 15 significant digits: the rest become zeros and the check fails.
# Alone, a value ending 000 whose check holds cannot be told from a real number (1 in 11 do):
# the readers decide those by their column (docs/FORMAT.md).
r0="110105198001080000"; assert chk(r0[:17])!=r0[17]
add("cn_ric",r0,None,"excel_rounded","Excel rounded to 15 digits, check fails")
r1="110105198001070000"; assert chk(r1[:17])==r1[17]
add("cn_ric",r1,r1,None,"ends 000 but the check holds: valid alone")
add("cn_ric","110105198001080001",None,"bad_checksum","not Excel's rounding")
c0="6222021001123450000"; assert not luhn_ok(c0)
add("bank_card",c0,None,"excel_rounded","Excel rounded to 15 digits")
# Version 2 of cn_mobile: trunk 0, dots, IP long-distance prefixes.
M="+8613808679572"
for inp, note in [("013808679572","trunk 0"),("+86 (0)138 0867 9572","+86 (0)"),("138.0867.9572","dots"),
                  ("0086 0138-0867-9572","0086 and trunk 0")]:
    add("cn_mobile",inp,M,None,note+" (version 2)",versions=[2])
add("cn_mobile","013808679572",None,"bad_length","trunk 0 (version 1)",versions=[1])
add("cn_mobile","138.0867.9572",None,"bad_char","dots (version 1)",versions=[1])
for p, who in [("17951","China Mobile"),("12593","China Mobile"),("17911","China Unicom"),("10193","China Unicom"),
               ("17909","China Telecom"),("96688","China Tietong")]:
    add("cn_mobile",p+" 13808679572",M,None,f"IP prefix {p} ({who}), version 2",versions=[2])
add("cn_mobile","1795113808679572",None,"bad_length","IP prefix (version 1)",versions=[1])
add("cn_mobile","1234513808679572",None,"bad_length","not an IP prefix",versions=[1,2])
# Version 2 of email: the ideographic full stop, and A-labels as U-labels (UTS #46).
add("email","user@qq。com","user@qq.com",None,"ideographic full stop (version 2)",versions=[2])
add("email","user@qq｡com","user@qq.com",None,"half-width ideographic full stop (version 2)",versions=[2])
add("email","user@qq。com",None,"bad_format","ideographic full stop (version 1)",versions=[1])
add("email","张三@xn--fsqu00a.xn--fiqs8s","张三@例子.中国",None,"A-labels as U-labels (version 2)",versions=[2])
add("email","张三@xn--fsqu00a.xn--fiqs8s","张三@xn--fsqu00a.xn--fiqs8s",None,"A-labels kept (version 1)",versions=[1])
add("email","a@xn--zz.com",None,"bad_format","broken A-label (version 2)",versions=[2])
add("raw","  张三  ","张三",None,"trimmed")
add("raw","ＡＢＣ","ABC",None,"NFKC")
add("raw","Case Kept","Case Kept",None,"case kept")
add("raw","",None,"empty","empty")
add("raw","NULL",None,"placeholder","placeholder")
json.dump({"description":"pi_match canonicaliser test vectors. Each holds for the canonicaliser versions it lists (a kind tests the ones it has); canonical is null exactly when reason is not.","vectors":V},open("tests/data/canon_vectors.json","w"),ensure_ascii=False,indent=1)
print(len(V))
