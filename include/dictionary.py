"""The published tables' columns in the words of the people who read them (数据字典).

One home for what each column of ``roster`` and ``roster_change`` (OUTPUTS.md) is called
in Chinese, what it means, how a spreadsheet shows it, and the Chinese label of each
coded value. The finance workbook (:mod:`include.report.finance`) writes its headers,
its cells and its data-dictionary sheet from here; the digests, the workspace and the
monthly report read the same labels (``QUOTA_TYPE``, ``PERSONNEL_CLASS``...).

``format`` is a cell format of :mod:`include.pipeline.xlsx`: ``text`` (kept as text, so
that an ID or a code never turns into a number), ``date``, ``money`` (yuan, two
decimals), ``label`` (a coded value shown by its Chinese label; a value without a label
is shown as it is), ``flag`` (是/否).

    python -m include.dictionary      # the dictionary as a Markdown table (docs/OPERATIONS.md)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from include.findings import CODES, TERM

# Coded values and their labels (SOURCES.md gives the source systems' own terms).
SEX = MappingProxyType({"M": "男", "F": "女"})
PERSONNEL_CLASS = MappingProxyType({"establishment": "编制内", "non_establishment": "编制外", "retired": "离退休",
                                    "unknown": "待核实"})
QUOTA_TYPE = MappingProxyType({"admin": "行政编制", "political_legal": "政法专项编制", "logistics": "机关工勤编制",
                               "institution": "事业编制", "school": "中小学教职工编制", "turnover": "周转编制",
                               "non_establishment_cap": "编外控制数"})
NON_ESTABLISHMENT_CATEGORY = MappingProxyType({
    "general_support": "普通辅助岗", "professional": "专业技术岗", "enforcement_support": "执法辅助岗",
    "logistics_support": "后勤保障岗", "contracted_service": "购买服务人员"})
POST_CATEGORY = MappingProxyType({"general": "一般岗位", "personnel": "人事岗位", "finance": "财务岗位",
                                  "classified": "涉密岗位"})
LEADER_LEVEL = MappingProxyType({"principal": "正职", "deputy": "副职"})
FLAG = MappingProxyType({True: "是", False: "否"})
CHANGE = MappingProxyType({"added": "新增", "removed": "减少", "changed": "变动"})


@dataclass(frozen=True)
class Column:
    name: str           # the contract's column name
    header: str         # the Chinese header a person reads
    meaning: str
    format: str = "text"
    labels: MappingProxyType | None = None
    values: str = ""    # allowed values, where they are not coded (Chinese source values, a pattern)

    def allowed(self) -> str:
        if self.labels is not None:
            return "；".join(f"{k if not isinstance(k, bool) else str(k).lower()} = {v}" for k, v in self.labels.items())
        return self.values


ROSTER = (
    Column("period", "期间", "发布期间（月份）", values="YYYY-MM"),
    Column("as_of", "数据日期", "本次运行的逻辑日期（取数日期）", "date"),
    Column("id_number", "身份证号", "18 位公民身份号码（15 位旧号已升位）"),
    Column("name", "姓名", "编办实名制有此人取编办，否则取财政，再否则取人社"),
    Column("sex", "性别", "与身份证号一致", "label", SEX),
    Column("birth_date", "出生日期", "与身份证号一致", "date"),
    Column("region_code", "区划代码", "所在单位的行政区划代码"),
    Column("unit_code", "单位代码", "所在单位的统一社会信用代码；编办无此人时为发放工资的单位"),
    Column("unit_name", "单位名称", "所在单位名称"),
    Column("personnel_class", "人员类别", "编办实名制在册的为编制内/编制外；否则财政按离退休发放的为离退休；否则待核实",
           "label", PERSONNEL_CLASS),
    Column("quota_type", "编制类型", "占用的编制类型（编办实名制，仅编制内人员）", "label", QUOTA_TYPE),
    Column("non_establishment_category", "编外人员类别", "编外人员的岗位类别（编办实名制）", "label",
           NON_ESTABLISHMENT_CATEGORY),
    Column("post_category", "岗位类别", "编办实名制的岗位类别", "label", POST_CATEGORY),
    Column("position", "职务（岗位）", "编办实名制的职务或岗位名称"),
    Column("leader_level", "领导职务", "组织部的领导职务层级", "label", LEADER_LEVEL),
    Column("cadre_rank", "职务层次", "组织部的职务层次", values="正厅；副厅；正处；副处；正科；副科；科员"),
    Column("gross_pay", "应发工资（元）", "本期财政工资发放的应发工资合计；本期未发放为空", "money"),
    Column("budget_unit_codes", "发放预算单位编码", "本期发放其工资的预算单位编码，多个以 ; 分隔"),
    Column("insured_status", "参保状态", "人社社保参保状态", values="参保缴费；暂停缴费；终止参保"),
    Column("hr_status", "人社人员状态", "人社登记的人员状态", values="在职；退休"),
    Column("in_staffing", "编办实名制在册", "编办实名制有无此人", "label", FLAG),
    Column("in_org", "组织部在册", "组织部干部信息有无此人", "label", FLAG),
    Column("in_finance", "财政发薪", "财政工资发放有无此人", "label", FLAG),
    Column("in_hr", "人社在册", "人社参保有无此人", "label", FLAG),
    Column("alert_codes", "问题代码", "本期核查发现的问题代码，多个以 ; 分隔；无问题为空",
           values="；".join(f"{c} = {TERM[c]}" for c in CODES)),
)

# The changes as the workbook shows them: ``roster_change``'s columns (``fields`` in words)
# and, beside them, the person's name, unit and class and the pay before and after.
CHANGE_VIEW = (
    Column("period", "期间", "本期（月份）", values="YYYY-MM"),
    Column("previous_period", "对比期间", "与之比较的已发布期间", values="YYYY-MM"),
    Column("change", "变动类型", "本期新增、减少，或两期都在但单位、人员类别、编制类型、发放预算单位或应发工资有变",
           "label", CHANGE),
    Column("id_number", "身份证号", "变动人员的公民身份号码"),
    Column("name", "姓名", "本期花名册的姓名（减少人员取对比期间的）"),
    Column("unit_code", "单位代码", "本期所在单位（减少人员取对比期间的）"),
    Column("unit_name", "单位名称", "本期所在单位名称（减少人员取对比期间的）"),
    Column("personnel_class", "人员类别", "本期人员类别（减少人员取对比期间的）", "label", PERSONNEL_CLASS),
    Column("fields", "变动内容", "变动的项目：变动前 → 变动后（roster_change.fields 的文字形式）", "wrap"),
    Column("gross_pay_before", "上期应发（元）", "对比期间的应发工资；未发放为空", "money"),
    Column("gross_pay", "本期应发（元）", "本期的应发工资；未发放为空", "money"),
    Column("gross_pay_delta", "应发增减（元）", "本期应发减上期应发（未发放按 0 计）", "money"),
)

HEADER = MappingProxyType({c.name: c.header for c in ROSTER})
BY_NAME = MappingProxyType({c.name: c for c in ROSTER})


def markdown(columns=ROSTER) -> str:
    """The dictionary as a Markdown table."""
    lines = ["| column | 表头 | meaning | values |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.header} | {c.meaning} | {c.allowed()} |" for c in columns]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(ROSTER), "\n")
    print(markdown(CHANGE_VIEW))
